"""Reconciliation of one platform: import what we miss, re-send what it misses, compare balances.

Each run is stored as a report (``ReconciliationRun`` and its differences). Listing the
platform's transfers may repeat or skip rows while transfers are being added (offset paging),
so everything here is keyed by transfer id and idempotent: a transfer seen twice imports once,
and one skipped now is found by the next run, which starts again from the stored cursor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import cast

from sqlalchemy import exists, select, update
from sqlalchemy.orm import aliased

from connectors.interface import Connector, RemoteTransfer
from gateway.db import db, rows_affected, table_of, utcnow
from gateway.federation.models import Platform, PlatformLink, is_timebank
from gateway.jobs import task
from gateway.sync import balances
from gateway.sync.claims import DEPENDENCY_FAILED, follow_dependencies
from gateway.sync.models import (
    OutboxItem,
    ReconciliationRun,
    RemoteBalance,
    SyncCursor,
)
from gateway.sync.references import transaction_of
from gateway.sync.remote import ConnectorError, connector_for

log = logging.getLogger(__name__)

PAGE_SIZE = 200
MAX_DEPENDENCY_DEPTH = 3
Progress = Callable[[str, int], None]


def _no_progress(_stage: str, _count: int) -> None:
    return None


def _transfers(
    connector: Connector, cursor: str | None
) -> Iterator[tuple[RemoteTransfer, str | None]]:
    """Every transfer after ``cursor``, with the cursor of the page it came from."""
    seen: set[str] = set()
    cursors_seen: set[str | None] = {cursor}
    while True:
        page = connector.list_transfers(cursor, PAGE_SIZE)
        for transfer in page.items:
            if transfer.id not in seen:
                seen.add(transfer.id)
                yield transfer, cursor
        # Only the absence of a next cursor ends a listing (a page may be empty); a cursor we
        # were already given would loop forever, so it ends the listing too.
        if page.next_cursor is None or page.next_cursor in cursors_seen:
            return
        cursor = page.next_cursor
        cursors_seen.add(cursor)


def import_missing(
    run: ReconciliationRun, platform: Platform, connector: Connector, progress: Progress
) -> None:
    """Import remote transfers missing locally; note ours that the platform already has.

    The stored cursor moves past what was applied, never past a transfer that could not be
    (a wallet no active link owns yet, a reversal before its transfer, a credit limit): the
    next run reads it again, and applies it once its member's link is active.
    """
    from gateway.callbacks.processing import PARK_REASONS, apply_remote_transfer

    state = db.session.get(SyncCursor, platform.id) or SyncCursor(platform_id=platform.id)
    db.session.add(state)
    last_cursor = state.transfers_cursor
    holding = False
    ours_seen: dict[str, str] = {}
    for transfer, page_cursor in _transfers(connector, state.transfers_cursor):
        run.transfers_seen += 1
        ours = transaction_of(transfer.external_reference)
        if ours is not None:
            ours_seen[ours] = transfer.id
        else:
            outcome = apply_remote_transfer(platform, transfer, source="reconcile")
            if outcome == "imported":
                run.imported += 1
            elif outcome in PARK_REASONS:
                run.transfers_unapplied += 1
                holding = True  # the cursor stays at the page of the first one
        if not holding:
            last_cursor = page_cursor
        if run.transfers_seen % PAGE_SIZE == 0:
            progress("transfers", run.transfers_seen)
            db.session.commit()
    state.transfers_cursor = last_cursor
    _heal_pushed(platform, ours_seen)
    db.session.commit()
    progress("transfers", run.transfers_seen)


def _heal_pushed(platform: Platform, ours_seen: dict[str, str]) -> None:
    """A push the platform has but we gave up on was done after all: record it as done."""
    if not ours_seen:
        return
    stuck = db.session.scalars(
        select(OutboxItem).where(
            OutboxItem.platform_id == platform.id,
            OutboxItem.kind == "push_transfer",
            OutboxItem.state == "dead",
            OutboxItem.transaction_id.in_(list(ours_seen)),
        )
    ).all()
    for item in stuck:
        item.state = "succeeded"
        # Asked for by transaction id: each row carries one of ours_seen's keys.
        remote_id = ours_seen[cast(str, item.transaction_id)]
        item.result = {"remote_transfer_id": remote_id, "healed": True}
        item.completed_at = utcnow()
    db.session.flush()
    if follow_dependencies(item.id for item in stuck):  # a reversal that died with it goes now
        from gateway.sync.dispatch import ensure_drains

        db.session.commit()
        ensure_drains([platform.id])


def resend_failed(run: ReconciliationRun, platform: Platform) -> None:
    """Give outbound rows that died of transient failures another round of attempts.

    They keep their idempotency key, and our external reference is unique on the platform,
    so a transfer that did arrive the first time is not created twice. A row that died with
    its dependency comes back with it, not before (it would only die again).
    """
    revive = update(OutboxItem).values(
        state="pending", attempts=0, next_attempt_at=utcnow(), completed_at=None
    )
    mine = (OutboxItem.platform_id == platform.id) & (OutboxItem.state == "dead")
    revived = list(
        db.session.scalars(
            revive.where(mine, OutboxItem.last_error_code == "retries_exhausted").returning(
                OutboxItem.id
            ),
            execution_options={"synchronize_session": False},
        )
    )
    dependency = aliased(OutboxItem)
    alive = exists().where(
        dependency.id == OutboxItem.depends_on_id, dependency.state.not_in(("dead", "skipped"))
    )
    for _depth in range(MAX_DEPENDENCY_DEPTH):  # registration, push, reversal
        more = db.session.scalars(
            revive.where(mine, OutboxItem.last_error_code == DEPENDENCY_FAILED, alive).returning(
                OutboxItem.id
            ),
            execution_options={"synchronize_session": False},
        ).all()
        if not more:
            break
        revived.extend(more)
    run.resent = len(revived)
    db.session.commit()
    if revived:
        from gateway.sync.dispatch import ensure_drains

        ensure_drains([platform.id])


def stage_remote_balances(
    run: ReconciliationRun, platform: Platform, connector: Connector, progress: Progress
) -> None:
    """Read every active linked wallet's balance (a few at a time) into the staging table."""
    wallets = db.session.scalars(
        select(PlatformLink.remote_wallet_id).where(
            PlatformLink.platform_id == platform.id,
            PlatformLink.state == "active",
            PlatformLink.remote_wallet_id.is_not(None),
        )
    ).all()

    def read(wallet_id: str) -> tuple[str, int | None]:
        try:
            return wallet_id, connector.get_balance(wallet_id).minutes
        except ConnectorError as exc:
            log.warning("balance of a %s wallet unreadable: %s", platform.name, type(exc).__name__)
            return wallet_id, None

    batch: list[dict] = []
    with ThreadPoolExecutor(max_workers=max(1, platform.max_concurrency)) as pool:
        for wallet_id, minutes in pool.map(read, wallets):
            if minutes is None:
                run.wallets_unreadable += 1
                continue
            batch.append({"run_id": run.id, "remote_wallet_id": wallet_id, "minutes": minutes})
            run.wallets_checked += 1
            if len(batch) >= 1000:
                db.session.execute(table_of(RemoteBalance).insert(), batch)
                batch.clear()
                progress("wallets", run.wallets_checked)
    if batch:
        db.session.execute(table_of(RemoteBalance).insert(), batch)
    db.session.commit()
    progress("wallets", run.wallets_checked)


def _keep_only_this_reading(run: ReconciliationRun) -> None:
    """Drop what earlier runs read of the wallets this run read.

    Members' hours pages show each wallet's newest reading; a wallet this run could not read
    keeps its last one (until ``prune_runs`` removes that run).
    """
    table = table_of(RemoteBalance)
    earlier = select(ReconciliationRun.id).where(
        ReconciliationRun.platform_id == run.platform_id, ReconciliationRun.id != run.id
    )
    read_now = select(table.c.remote_wallet_id).where(table.c.run_id == run.id)
    db.session.execute(
        table.delete().where(table.c.run_id.in_(earlier), table.c.remote_wallet_id.in_(read_now))
    )


def reconcile_platform(
    platform_id: str, *, trigger: str = "schedule", progress: Progress = _no_progress
) -> ReconciliationRun:
    """Run every step for one platform and store the report; failures are recorded, not lost."""
    platform = db.session.get(Platform, platform_id)
    if platform is None:
        raise LookupError(f"no platform {platform_id}")
    run = ReconciliationRun(platform_id=platform.id, trigger=trigger)
    db.session.add(run)
    db.session.commit()
    try:
        connector = connector_for(platform)
        import_missing(run, platform, connector, progress)
        resend_failed(run, platform)
        stage_remote_balances(run, platform, connector, progress)
        run.differences = balances.record_differences(run.id, platform.id)
        _keep_only_this_reading(run)
        # Ended, but not whole: what it could not read or apply waits for the next run.
        whole = not (run.wallets_unreadable or run.transfers_unapplied)
        run.state = "succeeded" if whole else "partial"
    except ConnectorError as exc:
        db.session.rollback()
        run.state = "failed"
        run.error = f"{type(exc).__name__}: {exc}"
    run.finished_at = utcnow()
    db.session.commit()
    return run


@task
def reconcile_all(trigger: str = "schedule") -> dict[str, str]:
    """Reconcile every enabled platform (the scheduled job); returns each run's state."""
    platforms = db.session.scalars(
        select(Platform).where(Platform.enabled.is_(True), is_timebank())
    ).all()
    return {p.name: reconcile_platform(p.id, trigger=trigger).state for p in platforms}


@task
def prune_runs(keep_days: int = 30) -> int:
    """Delete reports older than ``keep_days`` (their differences go with them)."""
    cutoff = utcnow() - timedelta(days=keep_days)
    deleted = rows_affected(
        db.session.execute(
            table_of(ReconciliationRun).delete().where(ReconciliationRun.started_at < cutoff)
        )
    )
    db.session.commit()
    return deleted

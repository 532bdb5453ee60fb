"""Claiming outbox rows: which rows may run now, and moving them to ``running`` under a lease.

A row is claimable when it is pending, due, and not waiting for a row it depends on (a
member's registration before their transfers). Claiming is one UPDATE on the row's state, so
of several workers only one wins a row; on PostgreSQL the candidate rows are picked with
``FOR UPDATE SKIP LOCKED`` so concurrent drains of one platform take different rows instead of
queueing on each other's locks (SQLite serialises writers, which gives the same result).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, bindparam, exists, func, select, update
from sqlalchemy.orm import aliased

from gateway.db import db, rows_affected, utcnow
from gateway.sync.models import OutboxItem

OPEN_STATES = ("pending", "running")
# Why a row ended with the row it depends on: that row was dead, or skipped (a reversal only).
DEPENDENCY_FAILED = "dependency_failed"
DEPENDENCY_SKIPPED = "dependency_skipped"
SKIPPED_WITH_ITS_TRANSFER = "the transfer it reverses was skipped"


def claimable(now: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
    """Rows that may run at ``now``: pending, due, and with no unfinished dependency."""
    dependency = aliased(OutboxItem)
    waiting = exists().where(
        dependency.id == OutboxItem.depends_on_id, dependency.state.in_(OPEN_STATES)
    )
    return and_(OutboxItem.state == "pending", OutboxItem.next_attempt_at <= now, ~waiting)


# The drain claims many times a second: its statements are built once, with parameters.
_DUE_IDS = (
    select(OutboxItem.id)
    .where(OutboxItem.platform_id == bindparam("platform_id"), claimable(bindparam("now")))
    .order_by(OutboxItem.next_attempt_at)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_LEASE_ROWS = (
    update(OutboxItem)
    # ``pending`` again: on SQLite nothing was locked, and another drain may have won.
    .where(OutboxItem.id.in_(bindparam("ids", expanding=True)), OutboxItem.state == "pending")
    .values(
        state="running",
        attempts=OutboxItem.attempts + 1,
        next_attempt_at=bindparam("lease_until"),
    )
    .returning(OutboxItem)
)


def claim_due(platform_id: str, limit: int, lease_seconds: float) -> list[OutboxItem]:
    """Claim up to ``limit`` claimable rows of the platform, oldest due first (not committed)."""
    now = utcnow()
    # Two statements, not ``UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)``:
    # PostgreSQL may run such a subquery again for every row it scans, so that one claim took
    # every due row (400 for a limit of 8 in bench_sync) and took seconds doing it.
    ids = db.session.scalars(
        _DUE_IDS, {"platform_id": platform_id, "now": now, "limit": limit}
    ).all()
    if not ids:
        return []
    claimed = db.session.scalars(
        _LEASE_ROWS,
        {"ids": ids, "lease_until": now + timedelta(seconds=lease_seconds)},
        # The rows' new state comes back from the UPDATE; an older copy in this session
        # (a row retried within one drain) must not hide it.
        execution_options={"populate_existing": True, "synchronize_session": False},
    ).all()
    order = {outbox_id: n for n, outbox_id in enumerate(ids)}
    return sorted(claimed, key=lambda item: order[item.id])


def has_due(platform_id: str) -> bool:
    """Whether the platform has a row that could be claimed now."""
    found = db.session.scalar(
        select(OutboxItem.id)
        .where(OutboxItem.platform_id == platform_id, claimable(utcnow()))
        .limit(1)
    )
    return found is not None


def next_due(platform_id: str) -> datetime | None:
    """When the platform's next pending row falls due, if one waits in the future."""
    return db.session.scalar(
        select(func.min(OutboxItem.next_attempt_at)).where(
            OutboxItem.platform_id == platform_id,
            OutboxItem.state == "pending",
            OutboxItem.next_attempt_at > utcnow(),
        )
    )


def release_dependents(outbox_ids: Iterable[str]) -> set[str]:
    """Make rows waiting on these (now final) rows due at once; return their platforms."""
    ids = list(outbox_ids)
    if not ids:
        return set()
    platforms = db.session.scalars(
        update(OutboxItem)
        .where(OutboxItem.depends_on_id.in_(ids), OutboxItem.state == "pending")
        .values(next_attempt_at=utcnow())
        .returning(OutboxItem.platform_id),
        execution_options={"synchronize_session": False},
    ).all()
    return set(platforms)


def _dependency_is(state: str, of: list[str] | None) -> ColumnElement[bool]:
    """The row's dependency is in ``state`` (and is one of ``of``, unless None)."""
    dependency = aliased(OutboxItem)
    found = exists().where(dependency.id == OutboxItem.depends_on_id, dependency.state == state)
    return found if of is None else and_(OutboxItem.depends_on_id.in_(of), found)


def follow_dependencies(outbox_ids: Iterable[str] | None = None) -> set[str]:
    """Bring rows that ended with their dependency back when it succeeded; return their platforms.

    A row that died or was skipped only because the row it depends on was dead or skipped goes
    back to pending, with fresh attempts, once that row succeeded after all (an operator's
    retry, reconciliation's revival or healing): a transfer delivered late still gets its
    reversal. An event also comes back when the one it waited on was skipped.
    ``outbox_ids`` (rows that just succeeded) limits this to their dependents; None looks at
    every row (the sweeper's catch-all for rows changed outside a delivery).
    """
    ids = None if outbox_ids is None else list(outbox_ids)
    if ids is not None and not ids:
        return set()
    ended_with_it = (
        (OutboxItem.state == "dead") & (OutboxItem.last_error_code == DEPENDENCY_FAILED)
    ) | ((OutboxItem.state == "skipped") & (OutboxItem.last_error_code == DEPENDENCY_SKIPPED))
    # An event waits on the member's previous event only for order: one an operator skipped
    # lets the next ones go as well as a delivered one does.
    let_go = _dependency_is("succeeded", ids) | (
        (OutboxItem.kind == "event") & _dependency_is("skipped", ids)
    )
    revived = db.session.scalars(
        update(OutboxItem)
        .where(ended_with_it, let_go)
        .values(
            state="pending",
            attempts=0,
            next_attempt_at=utcnow(),
            completed_at=None,
            skipped_reason=None,
            last_error_code=None,
        )
        .returning(OutboxItem.platform_id),
        execution_options={"synchronize_session": False},
    ).all()
    return set(revived)


def skip_with_skipped_transfers() -> int:
    """Skip the reversals that died with a push an operator then skipped: the platform has
    neither (the sweeper's job: skipping happens outside a delivery)."""
    return rows_affected(
        db.session.execute(
            update(OutboxItem)
            .where(
                OutboxItem.kind == "reverse_transfer",
                OutboxItem.state == "dead",
                OutboxItem.last_error_code == DEPENDENCY_FAILED,
                _dependency_is("skipped", None),
            )
            .values(
                state="skipped",
                last_error_code=DEPENDENCY_SKIPPED,
                skipped_reason=SKIPPED_WITH_ITS_TRANSFER,
                completed_at=utcnow(),
            ),
            execution_options={"synchronize_session": False},
        )
    )


def expire_leases() -> int:
    """Put running rows whose lease ran out (their worker died) back to pending, due now."""
    now = utcnow()
    return rows_affected(
        db.session.execute(
            update(OutboxItem)
            .where(OutboxItem.state == "running", OutboxItem.next_attempt_at < now)
            .values(state="pending", next_attempt_at=now)
        )
    )


def platforms_with_due_rows(overdue_before: datetime) -> tuple[set[str], set[str]]:
    """Enabled platforms with claimable rows: (all of them, those with rows due before
    ``overdue_before``, which no drain has picked up for too long)."""
    from gateway.federation.models import Platform

    now = utcnow()
    rows = db.session.execute(
        select(OutboxItem.platform_id, func.min(OutboxItem.next_attempt_at))
        .join(Platform, Platform.id == OutboxItem.platform_id)
        .where(Platform.enabled.is_(True), claimable(now))
        .group_by(OutboxItem.platform_id)
    ).all()
    due = {platform_id for platform_id, _ in rows}
    overdue = {platform_id for platform_id, oldest in rows if _aware(oldest) < overdue_before}
    return due, overdue


def _aware(moment: datetime) -> datetime:
    # Aggregates bypass the column type on SQLite, so the zone may be missing there.
    from datetime import UTC

    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

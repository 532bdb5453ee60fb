"""Applying callback events to the ledger, exactly once, in any order.

``apply_remote_transfer`` is the one way a remote transfer becomes local: callbacks and
reconciliation both use it. The ledger's unique (platform, remote id) makes a second import
impossible; transfers we pushed ourselves ("gw-" references) are recognised and not imported.

Every attempt at an event is counted in a transaction of its own before the event is applied,
so an attempt that dies with the database, the worker or an unexpected error still counts.
A failed attempt leaves the event ``received`` with its reason and a time before which it is
not tried again (exponential backoff); after ``CALLBACK_MAX_ATTEMPTS`` attempts it is
``failed`` with the last reason, for an operator, and nothing retries it by itself.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from itertools import zip_longest

from flask import current_app
from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.exc import SQLAlchemyError

from connectors.errors import PermanentError
from connectors.interface import CallbackEvent, RemoteTransfer
from gateway.callbacks.decoding import OurFault, decode_event
from gateway.callbacks.drain import hand_over
from gateway.callbacks.erasure import scrub_if_about_erased
from gateway.callbacks.models import InboxEvent
from gateway.db import db, utcnow
from gateway.federation.models import Platform, PlatformLink
from gateway.jobs import task
from gateway.ledger import services as ledger
from gateway.ledger.errors import AlreadyReversed, CreditLimitExceeded, DuplicateExternal
from gateway.ledger.models import Transaction
from gateway.sync.models import OutboxItem

log = logging.getLogger(__name__)

OUR_PREFIX = "gw-"
LINKED_STATES = ("active", "erasing")


def _account_for_wallet(platform: Platform, wallet_id: str) -> str | None:
    """The local account behind a remote wallet, or None when it maps to nothing we know."""
    member_id = db.session.scalar(
        select(PlatformLink.member_id).where(
            PlatformLink.platform_id == platform.id,
            PlatformLink.remote_wallet_id == wallet_id,
            PlatformLink.state.in_(LINKED_STATES),
        )
    )
    if member_id is not None:
        return ledger.account_for_member(member_id).id
    if wallet_id == (platform.options or {}).get("clearing_wallet_id"):
        return ledger.clearing_account(platform.id).id
    return None


def _local_transaction(platform: Platform, remote_id: str) -> Transaction | None:
    """The local transaction a remote transfer is: imported from it, or pushed as it."""
    imported = ledger.find_by_external(platform.id, remote_id)
    if imported is not None:
        return imported
    pushed = db.session.scalar(
        select(OutboxItem.transaction_id).where(
            OutboxItem.platform_id == platform.id,
            OutboxItem.kind == "push_transfer",
            OutboxItem.state == "succeeded",
            OutboxItem.result["remote_transfer_id"].as_string() == remote_id,
        )
    )
    return db.session.get(Transaction, pushed) if pushed else None


def _apply_reversal(platform: Platform, transfer: RemoteTransfer, source: str) -> str:
    assert transfer.reversal_of is not None  # noqa: S101 - the caller checked
    original = _local_transaction(platform, transfer.reversal_of)
    if original is None:
        return "waiting"
    if ledger.reversal_of(original.id) is not None:
        return "already"
    try:
        ledger.reverse_transaction(
            original.id,
            reason=f"reversed on {platform.name}",
            source=source,
            external=(platform.id, transfer.id),
        )
    except (AlreadyReversed, DuplicateExternal):
        return "already"
    return "reversed"


def apply_remote_transfer(
    platform: Platform, transfer: RemoteTransfer, *, source: str = "callback"
) -> str:
    """Make ``transfer`` local once; returns imported, reversed, already, ours, unmapped,
    waiting or limit (the ledger refused it: over a credit limit)."""
    if transfer.reversal_of:
        return _apply_reversal(platform, transfer, source)
    if (transfer.external_reference or "").startswith(OUR_PREFIX):
        return "ours"
    if ledger.find_by_external(platform.id, transfer.id) is not None:
        return "already"
    # In one global order: imports creating the same two accounts on demand in opposite orders
    # would deadlock on each other's inserts.
    wallets = (transfer.payer_wallet_id, transfer.payee_wallet_id)
    accounts = {wallet: _account_for_wallet(platform, wallet) for wallet in sorted(set(wallets))}
    payer, payee = accounts[wallets[0]], accounts[wallets[1]]
    if payer is None or payee is None:
        return "unmapped"
    try:
        ledger.post_transfer(
            payer_account_id=payer,
            payee_account_id=payee,
            minutes=transfer.minutes,
            description=transfer.description[:500],
            kind="import",
            occurred_at=transfer.created_at,
            source=source,
            external=(platform.id, transfer.id),
        )
    except DuplicateExternal:
        return "already"
    except CreditLimitExceeded:
        return "limit"
    return "imported"


PARK_REASONS = {
    "unmapped": "a wallet of this transfer belongs to no linked member",
    "waiting": "the transfer it reverses has not arrived yet",
    "limit": "importing it would cross a local credit limit",
}


def _apply(row: InboxEvent, platform: Platform) -> CallbackEvent:
    """Apply the event; returns it decoded."""
    event = decode_event(platform, row.headers, row.body.encode())
    _settle(row, platform, event)
    return event


def _forget_if_erased(row: InboxEvent, event: CallbackEvent) -> None:
    """An event applied after its member's erasure keeps no body (see callbacks.erasure)."""
    if event.transfer:
        transfer = event.transfer
        scrub_if_about_erased(
            row,
            [transfer.payer_wallet_id, transfer.payee_wallet_id],
            through_live_link=row.state == "processed",
        )
    elif event.member:
        scrub_if_about_erased(row, [event.member.id, event.member.wallet_id])


def _settle(row: InboxEvent, platform: Platform, event: CallbackEvent) -> None:
    if event.type in ("transfer.completed", "transfer.reversed") and event.transfer:
        outcome = apply_remote_transfer(platform, event.transfer)
        if outcome in PARK_REASONS:
            row.state, row.parked_reason = "parked", PARK_REASONS[outcome]
            return
        local = _local_transaction(platform, event.transfer.id)
        row.transaction_id = local.id if local else None
        row.state = "processed"
        if outcome == "imported":
            _wake_waiting(platform)
        return
    if event.type in ("member.updated", "member.erased") and event.member:
        link = db.session.scalar(
            select(PlatformLink).where(
                PlatformLink.platform_id == platform.id,
                PlatformLink.remote_member_id == event.member.id,
            )
        )
        if link is not None and (event.type == "member.erased" or event.member.status == "erased"):
            link.state = "erased"
        row.state = "processed"
        return
    row.state = "ignored"


def _wake_waiting(platform: Platform) -> None:
    """Reversals parked before their transfer arrived may apply now (with a fresh budget of
    attempts: waiting is no failure)."""
    waiting = db.session.scalars(
        select(InboxEvent).where(
            InboxEvent.platform_id == platform.id,
            InboxEvent.state == "parked",
            InboxEvent.parked_reason == PARK_REASONS["waiting"],
        )
    ).all()
    for row in waiting:
        row.state, row.attempts, row.next_attempt_at = "received", 0, None
    db.session.info.setdefault("gateway.inbox.wake", []).extend(row.id for row in waiting)


def _max_attempts() -> int:
    return int(current_app.config.get("CALLBACK_MAX_ATTEMPTS", 8))


def _backoff(attempt: int) -> timedelta:
    """The wait after attempt ``attempt`` fails: base * 2^(attempt-1), at most the cap."""
    base = float(current_app.config.get("CALLBACK_BACKOFF_BASE_SECONDS", 30.0))
    cap = float(current_app.config.get("CALLBACK_BACKOFF_CAP_SECONDS", 3600.0))
    return timedelta(seconds=min(cap, base * 2 ** min(attempt - 1, 30)))


def _describe(exc: BaseException) -> str:
    """A failure in one line for operators: its kind and first line, never a statement's
    parameters (a database error's message carries them after the first line)."""
    cause = getattr(exc, "orig", None) or exc
    first = (str(cause).strip().splitlines() or [""])[0][:300]
    return f"{type(cause).__name__}: {first}" if first else type(cause).__name__


def _claim(inbox_id: str) -> str | None:
    """Count the coming attempt, committed before it starts; None to go ahead with it, else
    the state the event stays in.

    An event out of attempts (its last ones died before saying why: a killed worker, a lost
    database) is ``failed`` here rather than tried again.
    """
    row = db.session.get(InboxEvent, inbox_id, with_for_update=True, populate_existing=True)
    if row is None:
        db.session.rollback()
        return "missing"
    now = utcnow()
    if row.state != "received" or (row.next_attempt_at is not None and row.next_attempt_at > now):
        db.session.rollback()  # done, or waiting out its backoff: a repeated hand-over
        return row.state
    if row.attempts >= _max_attempts():
        last = row.parked_reason or "the last attempt did not finish"
        row.state, row.next_attempt_at = "failed", None
        row.parked_reason = f"gave up after {row.attempts} attempts; {last}"
        db.session.commit()
        return "failed"
    row.attempts += 1
    # Set before trying: an attempt that never reports back waits its backoff like any failure.
    row.next_attempt_at = now + _backoff(row.attempts)
    db.session.commit()
    return None


def _record_failure(inbox_id: str, exc: BaseException) -> None:
    """Note why the attempt failed, in its own transaction; ``failed`` when out of attempts."""
    try:
        row = db.session.get(InboxEvent, inbox_id, with_for_update=True, populate_existing=True)
        if row is None or row.state != "received":
            db.session.rollback()
            return
        reason = _describe(exc)
        if row.attempts >= _max_attempts():
            row.state, row.next_attempt_at = "failed", None
            row.parked_reason = f"failed {row.attempts} times; last: {reason}"
        else:
            row.parked_reason = f"attempt {row.attempts} failed: {reason}"
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("the failure of callback event %s was not recorded", inbox_id)


def _attempt(inbox_id: str) -> str:
    """Apply the claimed event in one transaction; returns its new state."""
    row = db.session.get(InboxEvent, inbox_id, with_for_update=True, populate_existing=True)
    if row is None or row.state != "received":
        state = row.state if row else "missing"
        db.session.rollback()
        return state  # another worker finished it between our claim and now
    platform = db.session.get_one(Platform, row.platform_id)
    try:
        event = _apply(row, platform)
    except OurFault:
        raise  # our configuration: retried, and failed in the end with the reason
    except PermanentError as exc:
        # The stored event breaks the contract (it came before the door checked it): no
        # attempt can change that.
        db.session.rollback()
        db.session.info.pop("gateway.inbox.wake", None)
        row = db.session.get_one(InboxEvent, inbox_id)
        row.state, row.parked_reason = "failed", f"breaks the platform's contract: {exc}"
        row.next_attempt_at = None
        db.session.commit()
        return "failed"
    if row.state != "parked":
        row.parked_reason = None  # a reason left by an earlier failed attempt
    row.next_attempt_at = None
    row.processed_at = utcnow() if row.state == "processed" else None
    _forget_if_erased(row, event)
    woken = db.session.info.pop("gateway.inbox.wake", [])
    state = row.state
    db.session.commit()
    if woken:
        try:
            hand_over(woken)
        except Exception:  # noqa: BLE001 - committed as received: the sweeper hands them over
            log.warning("%d woken callback event(s) not queued; the sweeper will", len(woken))
    return state


@task
def process_event(inbox_id: str) -> str:
    """Apply one stored event (idempotent: only a ``received`` event that is due is tried).

    A failing attempt is recorded and re-raised, so the drain and RQ see it.
    """
    state = _claim(inbox_id)
    if state is not None:
        return state
    try:
        return _attempt(inbox_id)
    except Exception as exc:
        db.session.rollback()
        db.session.info.pop("gateway.inbox.wake", None)
        _record_failure(inbox_id, exc)
        raise


def reprocess_event(inbox_id: str) -> str:
    """Operators: apply a parked or failed event again (after fixing what parked it), with a
    fresh budget of attempts; returns its state after this attempt."""
    row = db.session.get(InboxEvent, inbox_id)
    if row is None:
        raise LookupError(f"no callback event {inbox_id}")
    if row.state in ("parked", "failed"):
        row.state, row.parked_reason = "received", None
        row.attempts, row.next_attempt_at = 0, None
        db.session.commit()
    try:
        return process_event(inbox_id)
    except Exception as exc:  # noqa: BLE001 - recorded on the row, which the operator sees
        log.warning("reprocessing callback event %s failed: %s", inbox_id, type(exc).__name__)
        db.session.rollback()
        return db.session.get_one(InboxEvent, inbox_id, populate_existing=True).state


def _due() -> tuple[ColumnElement[bool], ...]:
    now = utcnow()
    return (
        InboxEvent.state == "received",
        or_(InboxEvent.next_attempt_at.is_(None), InboxEvent.next_attempt_at <= now),
    )


@task
def sweep_inbox(older_than_seconds: int = 30, batch: int = 500) -> int:
    """Hand over again received events that are due: their hand-over was lost (Redis down or
    flushed, a worker killed) or their backoff after a failed attempt is over.

    The oldest first, and the platforms take turns for the batch's places, so one platform's
    pile (of failing events, say) cannot take every place of every sweep.
    """
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    due = (*_due(), InboxEvent.received_at < cutoff)
    platform_ids = sorted(
        db.session.scalars(select(InboxEvent.platform_id).where(*due).distinct()).all()
    )
    oldest = [
        db.session.scalars(
            select(InboxEvent.id)
            .where(*due, InboxEvent.platform_id == platform_id)
            .order_by(InboxEvent.received_at, InboxEvent.id)
            .limit(batch)
        ).all()
        for platform_id in platform_ids
    ]
    # Round robin: a place one platform cannot fill goes to the others.
    ids = [inbox_id for rank in zip_longest(*oldest) for inbox_id in rank if inbox_id][:batch]
    db.session.rollback()
    hand_over(ids)
    return len(ids)

"""Applying callback events to the ledger, exactly once, in any order.

``apply_remote_transfer`` is the one way a remote transfer becomes local: callbacks and
reconciliation both use it. The ledger's unique (platform, remote id) makes a second import
impossible; transfers we pushed ourselves ("gw-" references) are recognised and not imported.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from connectors.errors import ConnectorError, PermanentError
from connectors.interface import RemoteTransfer
from gateway.callbacks.drain import hand_over
from gateway.callbacks.models import InboxEvent
from gateway.db import db, utcnow
from gateway.federation.models import Platform, PlatformLink
from gateway.jobs import task
from gateway.ledger import services as ledger
from gateway.ledger.errors import AlreadyReversed, CreditLimitExceeded, DuplicateExternal
from gateway.ledger.models import Transaction
from gateway.sync.models import OutboxItem
from gateway.sync.remote import connector_for

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


def _apply(row: InboxEvent, platform: Platform) -> None:
    event = connector_for(platform).parse_callback(row.headers, row.body.encode())
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
    """Reversals parked before their transfer arrived may apply now."""
    waiting = db.session.scalars(
        select(InboxEvent.id).where(
            InboxEvent.platform_id == platform.id,
            InboxEvent.state == "parked",
            InboxEvent.parked_reason == PARK_REASONS["waiting"],
        )
    ).all()
    for inbox_id in waiting:
        db.session.get(InboxEvent, inbox_id).state = "received"
    db.session.info.setdefault("gateway.inbox.wake", []).extend(waiting)


@task
def process_event(inbox_id: str) -> str:
    """Apply one stored event (idempotent: a processed or ignored event is left alone)."""
    row = db.session.get(InboxEvent, inbox_id, with_for_update=True)
    if row is None or row.state not in ("received", "failed"):
        return row.state if row else "missing"
    platform = db.session.get(Platform, row.platform_id)
    row.attempts += 1
    try:
        _apply(row, platform)
    except PermanentError as exc:
        db.session.rollback()
        row = db.session.get(InboxEvent, inbox_id)
        row.attempts += 1
        row.state, row.parked_reason = "parked", f"cannot be read: {exc}"
    except ConnectorError:
        db.session.rollback()
        raise  # retryable (a read-back failed): RQ records it, the sweeper tries again
    row.processed_at = utcnow() if row.state == "processed" else None
    woken = db.session.info.pop("gateway.inbox.wake", [])
    state = row.state
    db.session.commit()
    if woken:
        try:
            hand_over(woken)
        except Exception:  # noqa: BLE001 - committed as received: the sweeper hands them over
            log.warning("%d woken callback event(s) not queued; the sweeper will", len(woken))
    return state


def reprocess_event(inbox_id: str) -> str:
    """Operators: apply a parked or failed event again (after fixing what parked it)."""
    row = db.session.get(InboxEvent, inbox_id)
    if row is None:
        raise LookupError(f"no callback event {inbox_id}")
    if row.state in ("parked", "failed"):
        row.state, row.parked_reason = "received", None
        db.session.commit()
    return process_event(inbox_id)


@task
def sweep_inbox(older_than_seconds: int = 30, batch: int = 500) -> int:
    """Hand over again received events whose hand-over was lost (Redis down, or flushed)."""
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    ids = db.session.scalars(
        select(InboxEvent.id)
        .where(InboxEvent.state == "received", InboxEvent.received_at < cutoff)
        .limit(batch)
    ).all()
    hand_over(ids)
    return len(ids)

"""Writing events for webhook subscriptions, in the transaction of the change they describe.

Each event becomes one outbox row of kind ``event`` per enabled subscription that wants its
type; the row's payload is the whole event (``{"id", "type", "timestamp", "data"}``), sent as
is on every attempt under the same ``webhook-id``. A row depends on the newest undelivered
event row of the same subscription and member, so a member's events arrive in the order they
happened however long the receiver was away (``gateway.sync.claims.claimable``), and none
overtakes one the receiver refused for good until an operator acts on it. Transaction
events are ordered with their payer's events (their payee's, when the payer is no member).

Two postings of one member in concurrent transactions could chain to the same row; a posting
locks its accounts first (``gateway.ledger.services``), so on PostgreSQL they serialise.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import aliased

from gateway.db import db, utcnow
from gateway.federation.models import Platform
from gateway.ledger.events import transaction_posted, transaction_reversed
from gateway.ledger.models import Account, Transaction
from gateway.members.models import Member
from gateway.sync.claims import OPEN_STATES
from gateway.sync.models import OutboxItem
from gateway.sync.outbox import record_effect
from gateway.sync.references import transfer_reference
from gateway.webhooks.models import WebhookSubscription

KIND = "event"
UNDELIVERED = (*OPEN_STATES, "dead")


@dataclass(frozen=True)
class Event:
    """One event about ``member_id`` (the key its order is kept by)."""

    type: str
    data: dict[str, Any]
    member_id: str | None = None
    transaction_id: str | None = None
    id: str = field(default_factory=lambda: f"evt_{uuid.uuid4().hex}")

    def envelope(self) -> dict[str, Any]:
        """The event as the receiver gets it."""
        return {
            "id": self.id,
            "type": self.type,
            "timestamp": utcnow().isoformat(),
            "data": self.data,
        }


def subscribers() -> list[tuple[str, list[str]]]:
    """(platform id, event types) of every enabled subscription: one small query."""
    rows = db.session.execute(
        select(WebhookSubscription.platform_id, WebhookSubscription.events)
        .join(Platform, Platform.id == WebhookSubscription.platform_id)
        .where(Platform.enabled.is_(True), WebhookSubscription.disabled_at.is_(None))
    ).all()
    return [(platform_id, list(events or [])) for platform_id, events in rows]


def _undelivered_tail(platform_id: str, member_id: str) -> OutboxItem | None:
    """The member's newest event row for this subscription that is not delivered yet (dead
    ones included) and that no other row waits on: the end of the member's chain.

    A dead event holds the member's later ones, which die with it and come back when an
    operator retries or skips it (``follow_dependencies``): none overtakes it meanwhile.
    """
    waiting = aliased(OutboxItem)
    return db.session.scalar(
        select(OutboxItem)
        .where(
            OutboxItem.platform_id == platform_id,
            OutboxItem.kind == KIND,
            OutboxItem.member_id == member_id,
            OutboxItem.state.in_(UNDELIVERED),
            ~exists().where(waiting.depends_on_id == OutboxItem.id),
        )
        .order_by(OutboxItem.created_at.desc())
        .limit(1)
    )


def emit(events: Iterable[Event], wanted: list[tuple[str, list[str]]] | None = None) -> int:
    """Write an outbox row for each event and subscription that wants it; returns how many."""
    subscriptions = subscribers() if wanted is None else wanted
    if not subscriptions:
        return 0
    tails: dict[tuple[str, str], OutboxItem | None] = {}
    written = 0
    for event in events:
        envelope = event.envelope()
        for platform_id, types in subscriptions:
            if event.type not in types:
                continue
            previous = None
            if event.member_id is not None:
                key = (platform_id, event.member_id)
                if key not in tails:
                    tails[key] = _undelivered_tail(platform_id, event.member_id)
                previous = tails[key]
            row = record_effect(
                platform_id=platform_id,
                kind=KIND,
                member_id=event.member_id,
                transaction_id=event.transaction_id,
                payload=envelope,
                depends_on=previous,
            )
            if event.member_id is not None:
                tails[(platform_id, event.member_id)] = row
            written += 1
    return written


# -- what each event says -----------------------------------------------------------------------


def member_created(member: Member) -> None:
    """A member signed up (or was created by an operator)."""
    emit(
        [
            Event(
                "member.created",
                {
                    "member_id": member.id,
                    "email": member.email,
                    "display_name": member.display_name,
                    "locale": member.locale,
                    "municipio": member.municipio,
                    "verified": member.email_verified_at is not None,
                    "created_at": member.created_at.isoformat() if member.created_at else None,
                },
                member.id,
            )
        ]
    )


def member_verified(member: Member) -> None:
    """A member confirmed their address."""
    verified_at = member.email_verified_at
    emit(
        [
            Event(
                "member.verified",
                {
                    "member_id": member.id,
                    "email": member.email,
                    "verified_at": verified_at.isoformat() if verified_at else None,
                },
                member.id,
            )
        ]
    )


# What member events say about a person: gone from the outbox when the member is erased.
PERSONAL_FIELDS = ("email", "display_name", "municipio")


def member_deleted(member_id: str) -> None:
    """A member's data was erased: the event names the id and nothing else about them.

    The member's earlier events lose their personal fields too, sent or not: the outbox keeps
    no copy of what the member table forgot (one not sent yet goes out with them null).
    """
    rows = db.session.scalars(
        select(OutboxItem).where(OutboxItem.kind == KIND, OutboxItem.member_id == member_id)
    ).all()
    for row in rows:
        data = dict((row.payload or {}).get("data") or {})
        if any(data.get(name) is not None for name in PERSONAL_FIELDS if name in data):
            data.update({name: None for name in PERSONAL_FIELDS if name in data})
            row.payload = {**row.payload, "data": data}
    emit([Event("member.deleted", {"member_id": member_id}, member_id)])


def _platform(platform: Platform) -> dict[str, Any]:
    return {"id": platform.id, "name": platform.name, "display_name": platform.display_name}


def platform_linked(member_id: str, platform: Platform, linked_via: str) -> None:
    """A member's account on a timebank is ready: registered there, or linked by the member."""
    emit(
        [
            Event(
                "platform.linked",
                {"member_id": member_id, "platform": _platform(platform), "linked_via": linked_via},
                member_id,
            )
        ]
    )


def platform_unlinked(member_id: str, platform: Platform) -> None:
    """A member left a timebank (withdrew consent, or was erased)."""
    emit(
        [
            Event(
                "platform.unlinked",
                {"member_id": member_id, "platform": _platform(platform)},
                member_id,
            )
        ]
    )


def _member_of(account_id: str | None) -> str | None:
    account = db.session.get(Account, account_id) if account_id else None
    return account.member_id if account is not None else None


def transaction_data(txn: Transaction) -> dict[str, Any]:
    """A transaction as events carry it: enough to record it without asking the API."""
    origin = (
        db.session.get(Platform, txn.external_platform_id) if txn.external_platform_id else None
    )
    return {
        "id": txn.id,
        "reference": txn.external_id if origin is not None else transfer_reference(txn.id),
        "kind": txn.kind,
        "description": txn.description,
        "minutes": txn.minutes,
        "payer_account_id": txn.payer_account_id,
        "payee_account_id": txn.payee_account_id,
        "payer_member_id": _member_of(txn.payer_account_id),
        "payee_member_id": _member_of(txn.payee_account_id),
        "platform": origin.name if origin is not None else None,
        "reversal_of": txn.reversal_of,
        "occurred_at": txn.occurred_at.isoformat(),
        "created_at": txn.created_at.isoformat(),
    }


def _ledger_events(txn: Transaction, event_type: str) -> list[Event]:
    data = transaction_data(txn)
    events = [
        Event(
            event_type,
            data,
            data["payer_member_id"] or data["payee_member_id"],
            transaction_id=txn.id,
        )
    ]
    for entry in txn.entries:
        account = db.session.get(Account, entry.account_id)
        if account is None or account.member_id is None:
            continue  # organizations and clearing accounts: no member to tell about
        limit = account.credit_limit_minutes
        balance = entry.balance_after_minutes
        events.append(
            Event(
                "balance.changed",
                {
                    "member_id": account.member_id,
                    "account_id": account.id,
                    "balance_minutes": balance,
                    "credit_limit_minutes": limit,
                    "available_minutes": None if limit is None else balance - limit,
                    "transaction_id": txn.id,
                },
                account.member_id,
                transaction_id=txn.id,
            )
        )
    return events


def _on_posted(_sender: Any, transaction: Transaction, **_: Any) -> None:
    wanted = subscribers()
    if wanted:  # the posting path stays one small query long when nobody listens
        kind = "transaction.imported" if transaction.external_platform_id else "transaction.posted"
        emit(_ledger_events(transaction, kind), wanted)


def _on_reversed(_sender: Any, transaction: Transaction, **_: Any) -> None:
    wanted = subscribers()
    if wanted:
        emit(_ledger_events(transaction, "transaction.reversed"), wanted)


def connect() -> None:
    """Subscribe to the ledger's signals (idempotent)."""
    transaction_posted.connect(_on_posted, weak=False)
    transaction_reversed.connect(_on_reversed, weak=False)

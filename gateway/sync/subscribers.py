"""From ledger postings to outbox rows, in the posting's own transaction.

Every local transaction that involves a member linked to a platform is mirrored on that
platform, except on the platform it came from; a reversal is mirrored wherever the original
was. So each platform's wallet sees all of its member's hours after the link, and
reconciliation can expect its balance.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Select, bindparam, select

from gateway.db import db
from gateway.federation.models import PlatformLink
from gateway.ledger.events import transaction_posted, transaction_reversed
from gateway.ledger.models import Account, Transaction
from gateway.sync.claims import DEPENDENCY_SKIPPED, SKIPPED_WITH_ITS_TRANSFER
from gateway.sync.models import FINAL_STATES, OutboxItem
from gateway.sync.outbox import record_effect

MIRRORED_LINK_STATES = ("pending", "active")
SKIPPED_WITH_PUSH = (DEPENDENCY_SKIPPED, SKIPPED_WITH_ITS_TRANSFER)
_LINKS = PlatformLink.__table__


@lru_cache(maxsize=4)
def _links_of_members(members: int) -> Select[tuple[str, str, str]]:
    """Every posting reads its members' links: built once per member count, on the table (the
    ORM's statement path costs more, for three plain columns), one parameter ``m<i>`` each."""
    return select(_LINKS.c.platform_id, _LINKS.c.member_id, _LINKS.c.state).where(
        _LINKS.c.member_id.in_([bindparam(f"m{i}") for i in range(members)]),
        _LINKS.c.state.in_(MIRRORED_LINK_STATES),
        _LINKS.c.platform_id != bindparam("origin"),  # not back to where it came from
    )


def _member_of(account_id: str | None) -> str | None:
    if account_id is None:
        return None
    account = db.session.get(Account, account_id)
    return account.member_id if account is not None else None


def _open_registrations(members: list[str], pending: set[tuple[str, str]]) -> dict[str, OutboxItem]:
    """Per platform, the newest unfinished registration of the first of ``members`` whose link
    there is still pending (``pending`` holds such (member, platform) pairs): one query."""
    rows = db.session.scalars(
        select(OutboxItem)
        .where(
            OutboxItem.member_id.in_({member for member, _ in pending}),
            OutboxItem.platform_id.in_({platform for _, platform in pending}),
            OutboxItem.kind == "register_member",
            OutboxItem.state.not_in(FINAL_STATES),
        )
        .order_by(OutboxItem.created_at)
    ).all()
    found: dict[str, OutboxItem] = {}
    for member_id in reversed(members):  # the payer last, so that it wins
        for row in rows:  # oldest first, so that the newest wins
            if row.member_id == member_id and (member_id, row.platform_id) in pending:
                found[row.platform_id] = row
    return found


def mirror_transaction(transaction: Transaction) -> list[OutboxItem]:
    """Write a push row for every platform the transaction's members are linked to."""
    payer_account, payee_account = transaction.payer_account_id, transaction.payee_account_id
    if payer_account is None or payee_account is None:
        return []  # multi-leg postings have no two-wallet equivalent remotely
    payer, payee = _member_of(payer_account), _member_of(payee_account)
    members = [m for m in (payer, payee) if m]
    if not members:
        return []
    params = {f"m{i}": member for i, member in enumerate(members)}
    links = db.session.execute(
        _links_of_members(len(members)),
        {**params, "origin": transaction.external_platform_id or ""},
    ).all()
    if not links:
        return []
    platform_ids = sorted({link.platform_id for link in links})
    # A push waits only for a registration still running: once a link is active its wallet is
    # known, and in the usual case (every link active) no query is needed for it.
    pending = {(link.member_id, link.platform_id) for link in links if link.state == "pending"}
    registrations = _open_registrations(members, pending) if pending else {}
    payload: dict[str, Any] = {
        "payer_member_id": payer,
        "payee_member_id": payee,
        "minutes": transaction.minutes,
        "description": transaction.description,
        "occurred_at": transaction.occurred_at.isoformat(),
    }
    return [
        record_effect(
            platform_id=platform_id,
            kind="push_transfer",
            transaction_id=transaction.id,
            payload=payload,
            depends_on=registrations.get(platform_id),
        )
        for platform_id in platform_ids
    ]


def mirror_reversal(reversal: Transaction) -> list[OutboxItem]:
    """Write a reverse row wherever the original transaction was pushed or came from.

    Whatever became of a push, its reversal follows it: it waits for a push not delivered yet,
    dies with a dead one and comes back when that push is delivered after all (see
    ``gateway.sync.claims.follow_dependencies``); a skipped push's reversal is skipped too, so
    the platform sees both or neither.
    """
    original = db.session.get(Transaction, reversal.reversal_of)
    if original is None:
        return []
    rows = []
    pushes = db.session.scalars(
        select(OutboxItem).where(
            OutboxItem.transaction_id == original.id, OutboxItem.kind == "push_transfer"
        )
    ).all()
    for push in pushes:
        if reversal.external_platform_id == push.platform_id:
            continue
        rows.append(
            record_effect(
                platform_id=push.platform_id,
                kind="reverse_transfer",
                transaction_id=reversal.id,
                payload={"original_transaction_id": original.id},
                depends_on=push,
                skipped=SKIPPED_WITH_PUSH if push.state == "skipped" else None,
            )
        )
    origin = original.external_platform_id
    if origin and reversal.external_platform_id != origin:
        # Imported from a platform and reversed here: the platform must hear of it.
        rows.append(
            record_effect(
                platform_id=origin,
                kind="reverse_transfer",
                transaction_id=reversal.id,
                payload={
                    "original_transaction_id": original.id,
                    "remote_transfer_id": original.external_id,
                },
            )
        )
    return rows


def _on_posted(_sender: Any, transaction: Transaction, **_: Any) -> None:
    mirror_transaction(transaction)


def _on_reversed(_sender: Any, transaction: Transaction, **_: Any) -> None:
    mirror_reversal(transaction)


def connect() -> None:
    """Subscribe to the ledger's signals (idempotent)."""
    transaction_posted.connect(_on_posted, weak=False)
    transaction_reversed.connect(_on_reversed, weak=False)

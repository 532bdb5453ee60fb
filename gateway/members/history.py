"""A member's hours as their own page shows them: postings with names, and each timebank's view.

The statement comes from the ledger (``gateway.ledger.services.statement``: pages by cursor,
newest first); this module adds what a person needs to read it: who was on the other side (a
member's name, an organization's, or a timebank's for someone over there), where the posting
came from or was sent to, and how each linked timebank's balance compares with ours at its last
reconciliation. An erased member is never named: their postings stay (the ledger is
append-only), under a pseudonym.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from gateway.db import db
from gateway.federation.models import Platform, PlatformLink
from gateway.ledger import services as ledger
from gateway.ledger.models import Account, Entry, Organization, Transaction
from gateway.members.models import Member
from gateway.sync.models import (
    OutboxItem,
    ReconciliationDifference,
    ReconciliationRun,
    RemoteBalance,
)

MIRROR_KINDS = ("push_transfer", "reverse_transfer")
ON_ITS_WAY = ("pending", "running")
# When one posting has several rows for one platform, the most advanced state is the one told.
_MIRROR_ORDER = {"succeeded": 3, "pending": 2, "running": 2, "dead": 1, "skipped": 0}
_MIRROR_SHOWN = {"succeeded": "sent", "pending": "on_its_way", "running": "on_its_way"}


@dataclass(frozen=True)
class Counterpart:
    """Who was on the other side: ``kind`` is member, erased, organization or platform."""

    kind: str
    name: str


@dataclass(frozen=True)
class Mirror:
    """A posting's copy on a timebank: ``state`` is sent, on_its_way or not_sent."""

    platform: str
    state: str


@dataclass(frozen=True)
class Posting:
    """One line of the member's history."""

    entry_id: int
    transaction_id: str
    kind: str
    description: str
    minutes: int
    balance_after_minutes: int
    occurred_at: datetime
    reversal_of: str | None
    counterparts: list[Counterpart]
    came_from: str | None
    mirrors: list[Mirror] = field(default_factory=list)


def platform_names() -> dict[str, str]:
    """Every platform's name as members read it, by id."""
    return {p.id: p.display_name or p.name for p in db.session.scalars(select(Platform))}


def _counterparts(account_ids: Iterable[str], platforms: dict[str, str]) -> dict[str, Counterpart]:
    ids = set(account_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        select(
            Account.id, Account.platform_id, Member.display_name, Member.status, Organization.name
        )
        .outerjoin(Member, Member.id == Account.member_id)
        .outerjoin(Organization, Organization.id == Account.organization_id)
        .where(Account.id.in_(ids))
    )
    found = {}
    for account_id, platform_id, member_name, status, organization in rows:
        if status == "erased":
            found[account_id] = Counterpart("erased", "")
        elif member_name is not None:
            found[account_id] = Counterpart("member", member_name)
        elif organization is not None:
            found[account_id] = Counterpart("organization", organization)
        else:  # a clearing account: someone on that timebank who is not linked to us
            found[account_id] = Counterpart("platform", platforms.get(platform_id or "", "?"))
    return found


def _mirrors(transaction_ids: list[str], platforms: dict[str, str]) -> dict[str, list[Mirror]]:
    best: dict[tuple[str, str], str] = {}
    if transaction_ids:
        rows = db.session.execute(
            select(OutboxItem.transaction_id, OutboxItem.platform_id, OutboxItem.state).where(
                OutboxItem.transaction_id.in_(transaction_ids),
                OutboxItem.kind.in_(MIRROR_KINDS),
            )
        )
        for transaction_id, platform_id, state in rows:
            if transaction_id is None:  # only transfer rows are asked for: they all carry one
                continue
            key = (transaction_id, platform_id)
            if key not in best or _MIRROR_ORDER[state] > _MIRROR_ORDER[best[key]]:
                best[key] = state
    found: dict[str, list[Mirror]] = {}
    for (transaction_id, platform_id), state in sorted(best.items()):
        shown = _MIRROR_SHOWN.get(state, "not_sent")
        found.setdefault(transaction_id, []).append(Mirror(platforms.get(platform_id, "?"), shown))
    return found


def history(
    account: Account, *, cursor: str | None = None, limit: int = 20
) -> tuple[list[Posting], str | None]:
    """A page of the account's postings, newest first, and the next page's cursor.

    Raises ``gateway.ledger.errors.InvalidCursor`` for a cursor the ledger did not hand out.
    """
    lines, next_cursor = ledger.statement(account.id, cursor=cursor, limit=limit)
    platforms = platform_names()
    names = _counterparts(
        (other for line in lines for other in line.counterparty_account_ids), platforms
    )
    mirrors = _mirrors([line.transaction_id for line in lines], platforms)
    postings = []
    for line in lines:
        # Loaded with the statement's entries: no query.
        transaction = db.session.get(Transaction, line.transaction_id)
        origin = transaction.external_platform_id if transaction else None
        postings.append(
            Posting(
                entry_id=line.entry_id,
                transaction_id=line.transaction_id,
                kind=line.kind,
                description=line.description,
                minutes=line.amount_minutes,
                balance_after_minutes=line.balance_after_minutes,
                occurred_at=line.occurred_at,
                reversal_of=line.reversal_of,
                counterparts=[names[a] for a in line.counterparty_account_ids if a in names],
                came_from=platforms.get(origin) if origin else None,
                mirrors=mirrors.get(line.transaction_id, []),
            )
        )
    return postings, next_cursor


def all_postings(account: Account) -> list[Posting]:
    """Every posting of the account, newest first (for the member's copy of their data)."""
    postings: list[Posting] = []
    cursor = None
    while True:
        page, cursor = history(account, cursor=cursor, limit=ledger.MAX_STATEMENT_PAGE)
        postings.extend(page)
        if cursor is None:
            return postings


# -- each timebank's view of the balance ---------------------------------------------------------


@dataclass(frozen=True)
class PlatformBalance:
    """A linked timebank's balance of the member, as its last reconciliation read it.

    ``status``: joining (the registration is on its way), unread (not read since the link), or
    read. ``reason`` says in a word why it differs from ours (None when it does not):
    on_its_way, arrived_since, changed_since, not_mirrored, inbound or unexplained.
    """

    platform: str
    status: str
    remote_minutes: int | None = None
    read_at: datetime | None = None
    difference_minutes: int = 0
    reason: str | None = None
    on_its_way: int = 0


def _transfers_on_their_way(account: Account | None, platform_id: str) -> int:
    if account is None:
        return 0
    return (
        db.session.scalar(
            select(func.count())
            .select_from(OutboxItem)
            .where(
                OutboxItem.platform_id == platform_id,
                OutboxItem.kind.in_(MIRROR_KINDS),
                OutboxItem.state.in_(ON_ITS_WAY),
                OutboxItem.transaction_id.in_(
                    select(Entry.transaction_id).where(Entry.account_id == account.id)
                ),
            )
        )
        or 0
    )


def _last_reading(platform_id: str, wallet_id: str) -> tuple[int, ReconciliationRun] | None:
    """The wallet's balance as the platform's newest finished reconciliation read it."""
    row = db.session.execute(
        select(RemoteBalance.minutes, ReconciliationRun)
        .join(ReconciliationRun, ReconciliationRun.id == RemoteBalance.run_id)
        .where(
            ReconciliationRun.platform_id == platform_id,
            ReconciliationRun.finished_at.is_not(None),
            RemoteBalance.remote_wallet_id == wallet_id,
        )
        .order_by(ReconciliationRun.started_at.desc())
        .limit(1)
    ).one_or_none()
    return (row[0], row[1]) if row is not None else None


def _reason(difference: ReconciliationDifference | None, on_its_way: int) -> str:
    if difference is None:
        # The two agreed when read: what moved here since has not been read there yet.
        return "on_its_way" if on_its_way else "changed_since"
    if difference.explanation == "outbound_pending":
        return "on_its_way" if on_its_way else "arrived_since"
    if difference.explanation == "inbound_not_imported":
        return "inbound"
    if difference.explanation == "not_mirrored":
        return "on_its_way" if on_its_way else "not_mirrored"
    return "unexplained"


def platform_balances(member: Member, account: Account | None) -> list[PlatformBalance]:
    """Each timebank the member is linked to (or joining), with its balance beside ours."""
    local = account.balance_minutes if account is not None else 0
    links = db.session.execute(
        select(PlatformLink, Platform)
        .join(Platform, Platform.id == PlatformLink.platform_id)
        .where(PlatformLink.member_id == member.id, PlatformLink.state.in_(("pending", "active")))
        .order_by(Platform.name)
    ).all()
    balances = []
    for link, platform in links:
        name = platform.display_name or platform.name
        if link.state == "pending" or not link.remote_wallet_id:
            balances.append(PlatformBalance(name, "joining"))
            continue
        reading = _last_reading(platform.id, link.remote_wallet_id)
        if reading is None:
            balances.append(PlatformBalance(name, "unread"))
            continue
        remote, run = reading
        on_its_way = _transfers_on_their_way(account, platform.id)
        reason = None
        if remote != local:
            difference = db.session.scalar(
                select(ReconciliationDifference).where(
                    ReconciliationDifference.run_id == run.id,
                    ReconciliationDifference.member_id == member.id,
                )
            )
            reason = _reason(difference, on_its_way)
        balances.append(
            PlatformBalance(
                name,
                "read",
                remote_minutes=remote,
                read_at=run.finished_at,
                difference_minutes=remote - local,
                reason=reason,
                on_its_way=on_its_way,
            )
        )
    return balances

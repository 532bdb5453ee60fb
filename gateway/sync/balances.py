"""Comparing remote wallet balances with the ledger, in one set-based query per run.

For a member linked to platform P, the ledger splits the member's entries three ways:
mirrored on P (imported from P, or pushed to P successfully), outbound pending (an outbox row to
P still pending or running) and the rest (hours from before the link, or that could not be
sent). P's wallet should hold exactly the mirrored sum, plus whatever P has that we have not
imported yet. A difference between remote and local balance is recorded with those parts;
what they do not explain is ``unexplained``. Hours the ledger keeps off P are benign
(``not_mirrored``) only when the ledger can say why: a reversal is never among them while P
has the transfer it reverses, since a reversal follows its transfer wherever it went.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import and_, case, func, literal, select
from sqlalchemy.orm import aliased

from gateway.db import db, table_of
from gateway.federation.models import PlatformLink
from gateway.ledger.models import Account, Entry, Transaction
from gateway.sync.models import OutboxItem, ReconciliationDifference, RemoteBalance

MIRROR_KINDS = ("push_transfer", "reverse_transfer")


@dataclass(frozen=True)
class WalletComparison:
    """One linked wallet whose remote balance differs from the local one."""

    member_id: str
    remote_wallet_id: str
    local_minutes: int
    mirrored_minutes: int
    pending_outbound_minutes: int
    remote_minutes: int
    # Reversals missing on P although P has the transfer they reverse: nothing explains these.
    unfollowed_reversal_minutes: int = 0

    @property
    def difference_minutes(self) -> int:
        """Remote minus local."""
        return self.remote_minutes - self.local_minutes

    def explain(self, pending_inbound_minutes: int = 0) -> str:
        """The explanation operators read: what part of the difference is accounted for."""
        if self.remote_minutes - self.mirrored_minutes - pending_inbound_minutes != 0:
            return "unexplained"
        if self.unfollowed_reversal_minutes:
            return "unexplained"
        if self.pending_outbound_minutes:
            return "outbound_pending"
        if pending_inbound_minutes:
            return "inbound_not_imported"
        return "not_mirrored"


def _outbox_status(platform_id: str):  # noqa: ANN202 - a SQLAlchemy subquery
    """Per transaction: mirrored on the platform (1/0) and still pending there (1/0)."""
    return (
        select(
            OutboxItem.transaction_id.label("transaction_id"),
            func.max(case((OutboxItem.state == "succeeded", 1), else_=0)).label("done"),
            func.max(case((OutboxItem.state.in_(("pending", "running")), 1), else_=0)).label(
                "pending"
            ),
        )
        .where(OutboxItem.platform_id == platform_id, OutboxItem.kind.in_(MIRROR_KINDS))
        .group_by(OutboxItem.transaction_id)
        .subquery()
    )


def compare(run_id: str, platform_id: str) -> Iterator[WalletComparison]:
    """Yield every staged wallet of the run whose remote balance differs from the ledger's."""
    status = _outbox_status(platform_id)
    mirrored = (Transaction.external_platform_id == platform_id) | (status.c.done == 1)
    pending = and_(status.c.pending == 1, status.c.done != 1)
    original = aliased(Transaction)
    original_status = _outbox_status(platform_id)
    # Spelled without NOT over nullable columns: NOT NULL is NULL, never true.
    unfollowed = and_(
        Transaction.reversal_of.is_not(None),
        (original.external_platform_id == platform_id) | (original_status.c.done == 1),
        func.coalesce(Transaction.external_platform_id, "") != platform_id,
        func.coalesce(status.c.done, 0) == 0,
        func.coalesce(status.c.pending, 0) == 0,
    )
    amount = Entry.amount_minutes
    query = (
        select(
            PlatformLink.member_id,
            PlatformLink.remote_wallet_id,
            Account.balance_minutes,
            func.coalesce(func.sum(case((mirrored, amount), else_=0)), 0),
            func.coalesce(func.sum(case((pending, amount), else_=0)), 0),
            RemoteBalance.minutes,
            func.coalesce(func.sum(case((unfollowed, amount), else_=0)), 0),
        )
        .select_from(PlatformLink)
        .join(
            RemoteBalance,
            and_(
                RemoteBalance.run_id == literal(run_id),
                RemoteBalance.remote_wallet_id == PlatformLink.remote_wallet_id,
            ),
        )
        .join(Account, Account.member_id == PlatformLink.member_id)
        .outerjoin(Entry, Entry.account_id == Account.id)
        .outerjoin(Transaction, Transaction.id == Entry.transaction_id)
        .outerjoin(status, status.c.transaction_id == Transaction.id)
        .outerjoin(original, original.id == Transaction.reversal_of)
        .outerjoin(original_status, original_status.c.transaction_id == original.id)
        .where(PlatformLink.platform_id == platform_id, PlatformLink.state == "active")
        .group_by(
            PlatformLink.member_id,
            PlatformLink.remote_wallet_id,
            Account.balance_minutes,
            RemoteBalance.minutes,
        )
        .having(RemoteBalance.minutes != Account.balance_minutes)
    )
    for row in db.session.execute(query.execution_options(yield_per=2000)):
        yield WalletComparison(*row)


def record_differences(run_id: str, platform_id: str, batch: int = 1000) -> int:
    """Store each difference of the run with its explanation; return how many."""
    count = 0
    rows = []
    for wallet in compare(run_id, platform_id):
        rows.append(
            {
                "run_id": run_id,
                "platform_id": platform_id,
                "member_id": wallet.member_id,
                "remote_wallet_id": wallet.remote_wallet_id,
                "local_minutes": wallet.local_minutes,
                "expected_remote_minutes": wallet.mirrored_minutes,
                "remote_minutes": wallet.remote_minutes,
                "difference_minutes": wallet.difference_minutes,
                "pending_outbound_minutes": wallet.pending_outbound_minutes,
                "pending_inbound_minutes": 0,
                "explanation": wallet.explain(),
            }
        )
        if len(rows) >= batch:
            count += _insert(rows)
    if rows:
        count += _insert(rows)
    return count


def _insert(rows: list[dict]) -> int:
    from gateway.members.models import new_id

    for row in rows:
        row["id"] = new_id()
    db.session.execute(table_of(ReconciliationDifference).insert(), rows)
    inserted = len(rows)
    rows.clear()
    return inserted

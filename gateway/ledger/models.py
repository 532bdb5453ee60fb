"""The hour ledger: organizations, accounts, transactions and their entries (integer minutes).

Transactions and entries are append-only: the migration installs triggers that refuse UPDATE and
DELETE on both tables, on SQLite and PostgreSQL. A correction is a new reversal transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gateway.db import Base, UTCDateTime, utcnow
from gateway.members.models import new_id

ACCOUNT_KINDS = ("member", "organization", "clearing")
ORGANIZATION_KINDS = ("cooperative", "company")
TRANSACTION_KINDS = ("desk", "help", "transfer", "import", "reversal")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Organization(Base):
    """A cooperative that gives desks for time (later also companies)."""

    __tablename__ = "organizations"
    __table_args__ = (
        CheckConstraint(_in("kind", ORGANIZATION_KINDS), name="kind"),
        CheckConstraint("municipio IS NULL OR (municipio BETWEEN 1 AND 9)", name="municipio"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="cooperative")
    municipio: Mapped[int | None] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Account(Base):
    """An hour account of one member, one organization or one platform's clearing."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint(_in("kind", ACCOUNT_KINDS), name="kind"),
        # Exactly one owner, matching the kind; clearing accounts never have a limit.
        CheckConstraint(
            "(kind = 'member' AND member_id IS NOT NULL"
            " AND organization_id IS NULL AND platform_id IS NULL)"
            " OR (kind = 'organization' AND organization_id IS NOT NULL"
            " AND member_id IS NULL AND platform_id IS NULL)"
            " OR (kind = 'clearing' AND platform_id IS NOT NULL"
            " AND member_id IS NULL AND organization_id IS NULL"
            " AND credit_limit_minutes IS NULL)",
            name="owner",
        ),
        CheckConstraint(
            "credit_limit_minutes IS NULL OR credit_limit_minutes <= 0", name="limit_not_positive"
        ),
        # The last line of defence: a cached balance below the limit is refused by the database.
        CheckConstraint(
            "credit_limit_minutes IS NULL OR balance_minutes >= credit_limit_minutes",
            name="within_limit",
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))
    member_id: Mapped[str | None] = mapped_column(ForeignKey("members.id"), unique=True)
    organization_id: Mapped[str | None] = mapped_column(ForeignKey("organizations.id"), unique=True)
    # No foreign key yet: the platforms table belongs to the federation package's migrations.
    platform_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    # The lowest balance allowed (e.g. -600); NULL means no limit.
    credit_limit_minutes: Mapped[int | None] = mapped_column(Integer)
    # A cache of the sum of this account's entries, written under the account's row lock.
    balance_minutes: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Transaction(Base):
    """One balanced posting: its entries sum to zero. Never updated, never deleted."""

    __tablename__ = "ledger_transactions"
    __table_args__ = (
        CheckConstraint(_in("kind", TRANSACTION_KINDS), name="kind"),
        CheckConstraint(
            "(kind = 'reversal' AND reversal_of IS NOT NULL)"
            " OR (kind <> 'reversal' AND reversal_of IS NULL)",
            name="reversal",
        ),
        CheckConstraint(
            "(external_platform_id IS NULL AND external_id IS NULL)"
            " OR (external_platform_id IS NOT NULL AND external_id IS NOT NULL)",
            name="external",
        ),
        # A remote transfer is imported exactly once.
        UniqueConstraint("external_platform_id", "external_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(500), default="")
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Unique: a transaction is reversed at most once.
    reversal_of: Mapped[str | None] = mapped_column(
        ForeignKey("ledger_transactions.id"), unique=True
    )
    source: Mapped[str] = mapped_column(String(16), default="api")
    external_platform_id: Mapped[str | None] = mapped_column(String(36))
    external_id: Mapped[str | None] = mapped_column(String(200))
    created_by_client_id: Mapped[str | None] = mapped_column(String(64))
    # "metadata" is reserved on declarative classes, hence the attribute name.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)

    entries: Mapped[list[Entry]] = relationship(
        back_populates="transaction", order_by="Entry.id", lazy="selectin"
    )

    @property
    def minutes(self) -> int:
        """The amount moved: the sum of the positive entries."""
        return sum(e.amount_minutes for e in self.entries if e.amount_minutes > 0)

    @property
    def payer_account_id(self) -> str | None:
        """The account debited, when exactly one is."""
        debited = [e.account_id for e in self.entries if e.amount_minutes < 0]
        return debited[0] if len(debited) == 1 else None

    @property
    def payee_account_id(self) -> str | None:
        """The account credited, when exactly one is."""
        credited = [e.account_id for e in self.entries if e.amount_minutes > 0]
        return credited[0] if len(credited) == 1 else None


class Entry(Base):
    """One signed, non-zero amount on one account within a transaction. Never changed."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint("amount_minutes <> 0", name="non_zero"),
        # Statements walk one account's entries newest first.
        Index("ix_ledger_entries_account_id_id", "account_id", "id"),
        # An account appears at most once in a transaction.
        UniqueConstraint("transaction_id", "account_id"),
    )

    # An increasing integer: entries of one account are inserted under its row lock, so the id
    # order is the posting order, which statements and their cursors rely on.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    transaction_id: Mapped[str] = mapped_column(ForeignKey("ledger_transactions.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount_minutes: Mapped[int] = mapped_column(Integer)
    # The account's balance right after this entry: statements show a running balance.
    balance_after_minutes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    transaction: Mapped[Transaction] = relationship(back_populates="entries")

"""The outbox (every outbound effect, written with the change that causes it) and its attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base, UTCDateTime, utcnow
from gateway.members.models import new_id

OUTBOX_KINDS = (
    "register_member",
    "update_member",
    "erase_member",
    "push_transfer",
    "reverse_transfer",
)
# pending: waiting for its first or next attempt; running: a job holds it;
# succeeded / dead / skipped: final (dead = gave up or permanent error; skipped = by an operator).
OUTBOX_STATES = ("pending", "running", "succeeded", "dead", "skipped")
FINAL_STATES = ("succeeded", "dead", "skipped")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class OutboxItem(Base):
    """One outbound effect on one platform, delivered at least once, applied effectively once."""

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(_in("kind", OUTBOX_KINDS), name="kind"),
        CheckConstraint(_in("state", OUTBOX_STATES), name="state"),
        # The sweeper and the dispatcher look for due rows by state and time.
        Index("ix_outbox_state_next_attempt_at", "state", "next_attempt_at"),
        Index("ix_outbox_platform_id_state", "platform_id", "state"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    platform_id: Mapped[str] = mapped_column(ForeignKey("platforms.id"))
    kind: Mapped[str] = mapped_column(String(32))
    member_id: Mapped[str | None] = mapped_column(ForeignKey("members.id"), index=True)
    # The ledger transaction a transfer row carries (no foreign key: the ledger may prune nothing,
    # but the outbox must never block a ledger migration).
    transaction_id: Mapped[str | None] = mapped_column(String(36), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # A row runs only after this one succeeded (a member's registration before their transfers).
    # Indexed: every delivered row looks up the rows that wait on it, or ended with it.
    depends_on_id: Mapped[str | None] = mapped_column(ForeignKey("outbox.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_code: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    skipped_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def idempotency_key(self) -> str:
        """The key every remote write for this row carries: stable across retries."""
        return f"gw-{self.id}"


class SyncAttempt(Base):
    """One try at delivering an outbox row: when, how long, and how it ended."""

    __tablename__ = "sync_attempts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    outbox_id: Mapped[str] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"), index=True)
    platform_id: Mapped[str] = mapped_column(ForeignKey("platforms.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    # ok, retry, throttled (a 429: no attempt spent), dead, conflict (already there remotely: done)
    outcome: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(64))


# partial: the run ended, but some balances could not be read or some transfers applied.
RUN_STATES = ("running", "succeeded", "partial", "failed")
EXPLANATIONS = ("outbound_pending", "inbound_not_imported", "not_mirrored", "unexplained")


class ReconciliationRun(Base):
    """One reconciliation of one platform: what was imported, re-sent and found different."""

    __tablename__ = "reconciliation_runs"
    __table_args__ = (CheckConstraint(_in("state", RUN_STATES), name="state"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    platform_id: Mapped[str] = mapped_column(ForeignKey("platforms.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="running")
    trigger: Mapped[str] = mapped_column(String(16), default="schedule")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    wallets_checked: Mapped[int] = mapped_column(Integer, default=0)
    transfers_seen: Mapped[int] = mapped_column(Integer, default=0)
    imported: Mapped[int] = mapped_column(Integer, default=0)
    resent: Mapped[int] = mapped_column(Integer, default=0)
    differences: Mapped[int] = mapped_column(Integer, default=0)
    # What this run could not do; the next run tries again (a partial run).
    wallets_unreadable: Mapped[int] = mapped_column(Integer, default=0)
    transfers_unapplied: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class ReconciliationDifference(Base):
    """A wallet whose remote balance differs from what the ledger expects, and why."""

    __tablename__ = "reconciliation_differences"
    __table_args__ = (CheckConstraint(_in("explanation", EXPLANATIONS), name="explanation"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    run_id: Mapped[str] = mapped_column(
        ForeignKey("reconciliation_runs.id", ondelete="CASCADE"), index=True
    )
    platform_id: Mapped[str] = mapped_column(ForeignKey("platforms.id"), index=True)
    member_id: Mapped[str | None] = mapped_column(ForeignKey("members.id"))
    remote_wallet_id: Mapped[str] = mapped_column(String(120))
    local_minutes: Mapped[int] = mapped_column(Integer)
    expected_remote_minutes: Mapped[int] = mapped_column(Integer)
    remote_minutes: Mapped[int] = mapped_column(Integer)
    # remote - expected; explained by pending outbound or not-yet-imported inbound minutes.
    difference_minutes: Mapped[int] = mapped_column(Integer)
    pending_outbound_minutes: Mapped[int] = mapped_column(Integer, default=0)
    pending_inbound_minutes: Mapped[int] = mapped_column(Integer, default=0)
    explanation: Mapped[str] = mapped_column(String(32))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RemoteBalance(Base):
    """Remote balances read during a run, staged so the comparison is one set-based query.

    The newest run's rows of each platform are kept: they are what members' hours pages show
    beside the ledger's balance.
    """

    __tablename__ = "reconciliation_remote_balances"

    run_id: Mapped[str] = mapped_column(
        ForeignKey("reconciliation_runs.id", ondelete="CASCADE"), primary_key=True
    )
    remote_wallet_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    minutes: Mapped[int] = mapped_column(Integer)


class SyncCursor(Base):
    """Where the last reconciliation stopped reading a platform's transfer list."""

    __tablename__ = "sync_cursors"

    platform_id: Mapped[str] = mapped_column(ForeignKey("platforms.id"), primary_key=True)
    transfers_cursor: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

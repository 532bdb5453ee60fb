"""The callback inbox: every verified event, stored raw before it is acknowledged."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base, UTCDateTime, utcnow
from gateway.members.models import new_id

INBOX_STATES = ("received", "processed", "parked", "ignored", "failed")
# The event types the core applies; any other verified, well-formed event is stored as ignored.
HANDLED_TYPES = ("transfer.completed", "transfer.reversed", "member.updated", "member.erased")


class InboxEvent(Base):
    """One event from one platform; the sender's webhook id makes it unique (durably)."""

    __tablename__ = "callback_inbox"
    __table_args__ = (
        UniqueConstraint("platform_id", "webhook_id"),
        CheckConstraint(
            "state IN ('received', 'processed', 'parked', 'ignored', 'failed')", name="state"
        ),
        Index("ix_callback_inbox_state_received_at", "state", "received_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    platform_id: Mapped[str] = mapped_column(ForeignKey("platforms.id"))
    webhook_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Only the webhook-* headers: enough to re-verify, nothing personal.
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="received")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Why it is parked or failed, or why its last attempt failed while it waits to be retried.
    parked_reason: Mapped[str | None] = mapped_column(Text)
    # A failed attempt is not repeated before this (backoff); None: due now.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    transaction_id: Mapped[str | None] = mapped_column(String(36))

"""The audit log: every admin action, who did it, to what, and why."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.callbacks.models import InboxEvent
from gateway.db import Base, UTCDateTime, utcnow
from gateway.members.models import new_id
from gateway.sync.models import OutboxItem, SyncAttempt


class AdminAction(Base):
    """One action an operator (or an admin client) took; written in the action's transaction."""

    __tablename__ = "admin_actions"
    __table_args__ = (
        Index("ix_admin_actions_created_at_id", "created_at", "id"),
        # An item's page lists the actions on it.
        Index("ix_admin_actions_target_id", "target_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # "member:<id>" for a logged-in operator, "client:<client_id>" for an admin token.
    actor: Mapped[str] = mapped_column(String(120), index=True)
    action: Mapped[str] = mapped_column(String(40), index=True)
    target_type: Mapped[str] = mapped_column(String(40))
    target_id: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# The console's read paths over other packages' tables: newest-first pages (keyset on time
# and id), a tab's page, the chart's recent completions, each platform's latest attempt.
# Declared here, beside the queries that need them, so that those tables' owners keep their
# models to what their own code needs.
ADMIN_INDEXES = (
    Index("ix_outbox_created_at_id", OutboxItem.created_at, OutboxItem.id),
    Index("ix_outbox_state_created_at_id", OutboxItem.state, OutboxItem.created_at, OutboxItem.id),
    Index("ix_outbox_completed_at", OutboxItem.completed_at),
    # Per-platform health (counts by state, the oldest waiting item, the retrying ones) from
    # the index alone: unfinished and dead rows are spread over the whole table.
    Index(
        "ix_outbox_state_platform_id_attempts_created_at",
        OutboxItem.state,
        OutboxItem.platform_id,
        OutboxItem.attempts,
        OutboxItem.created_at,
    ),
    Index(
        "ix_sync_attempts_platform_id_started_at", SyncAttempt.platform_id, SyncAttempt.started_at
    ),
    Index("ix_callback_inbox_received_at_id", InboxEvent.received_at, InboxEvent.id),
)

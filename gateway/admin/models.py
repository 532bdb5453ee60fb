"""The audit log: every admin action, who did it, to what, and why."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.callbacks.models import InboxEvent
from gateway.db import Base, UTCDateTime, utcnow
from gateway.members.models import Member, new_id
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


# The partial indexes' predicates; the queries use the same text (see ADMIN_INDEXES).
WAITING_ROWS = "state IN ('pending', 'running')"
ENDED_ROWS = "state IN ('dead', 'skipped')"
# Not ok, conflict (already there: done) or throttled (a 429, no failure of the delivery).
FAILED_ATTEMPTS = "outcome NOT IN ('ok', 'conflict', 'throttled')"

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
    # The partial indexes below hold the few rows operators act on, not the history of
    # deliveries: small, and cheap to keep up since a delivered row leaves them. Their
    # predicates are SQL text the queries repeat word for word (``queries.WAITING`` ...) with
    # the values inline: a planner uses a partial index only when it can prove the query's
    # condition implies the index's, which it cannot from bound parameters.
    #
    # Waiting rows (the failing and pending tabs) newest first, filtered by platform, kind and
    # attempts inside the index; oldest first, each platform's oldest waiting item.
    Index(
        "ix_outbox_waiting_created_at_id",
        OutboxItem.created_at,
        OutboxItem.id,
        OutboxItem.platform_id,
        OutboxItem.kind,
        OutboxItem.attempts,
        postgresql_where=text(WAITING_ROWS),
        sqlite_where=text(WAITING_ROWS),
    ),
    # Dead and skipped rows by platform and kind: the dead tab's page and count under those
    # filters, without reading every dead row of the other platforms and kinds.
    Index(
        "ix_outbox_ended_platform_id_kind_state",
        OutboxItem.platform_id,
        OutboxItem.kind,
        OutboxItem.state,
        OutboxItem.created_at,
        OutboxItem.id,
        postgresql_where=text(ENDED_ROWS),
        sqlite_where=text(ENDED_ROWS),
    ),
    # Member search by any part of name, email or id (ILIKE/LIKE '%q%'): trigrams on
    # PostgreSQL (pg_trgm, which the migration creates). SQLite has no trigrams: there it is
    # a plain index the search does not use, on a table that changes rarely.
    Index(
        "ix_members_search_trgm",
        Member.display_name,
        Member.email,
        Member.id,
        postgresql_using="gin",
        postgresql_ops={c: "gin_trgm_ops" for c in ("display_name", "email", "id")},
    ),
    # Failed attempts by time (the chart's failures per hour): a few among every attempt.
    Index(
        "ix_sync_attempts_failed_started_at",
        SyncAttempt.started_at,
        SyncAttempt.platform_id,
        postgresql_where=text(FAILED_ATTEMPTS),
        sqlite_where=text(FAILED_ATTEMPTS),
    ),
)

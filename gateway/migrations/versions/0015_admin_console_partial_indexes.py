"""partial indexes for the operators' console

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 22:05:00.000000

The console's busiest views read the few rows operators act on, spread through a million rows
of history: waiting rows (the failing and pending tabs, each platform's oldest waiting item),
dead and skipped rows by platform and kind, and failed attempts (the chart). Each gets a
partial index holding only those rows. The predicates are the text of
``gateway.admin.models``, repeated here as a migration must not import models that change.
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

WAITING_ROWS = sa.text("state IN ('pending', 'running')")
ENDED_ROWS = sa.text("state IN ('dead', 'skipped')")
FAILED_ATTEMPTS = sa.text("outcome NOT IN ('ok', 'conflict', 'throttled')")

INDEXES = (
    (
        "ix_outbox_waiting_created_at_id",
        "outbox",
        ["created_at", "id", "platform_id", "kind", "attempts"],
        WAITING_ROWS,
    ),
    (
        "ix_outbox_ended_platform_id_kind_state",
        "outbox",
        ["platform_id", "kind", "state", "created_at", "id"],
        ENDED_ROWS,
    ),
    (
        "ix_sync_attempts_failed_started_at",
        "sync_attempts",
        ["started_at", "platform_id"],
        FAILED_ATTEMPTS,
    ),
)


def upgrade() -> None:
    for name, table, columns, where in INDEXES:
        op.create_index(name, table, columns, postgresql_where=where, sqlite_where=where)


def downgrade() -> None:
    for name, table, _, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)

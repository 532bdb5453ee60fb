"""indexes for the operators' console

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 19:10:00.000000

Newest-first pages of the outbox and the callback log (keyset on time and id), a tab's page
of the outbox, the chart's recent completions, each platform's counts and oldest waiting item, its latest attempt, and the
operator actions on one item: at a million outbox rows each was a full scan.
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_outbox_created_at_id", "outbox", ["created_at", "id"]),
    ("ix_outbox_state_created_at_id", "outbox", ["state", "created_at", "id"]),
    ("ix_outbox_completed_at", "outbox", ["completed_at"]),
    (
        "ix_outbox_state_platform_id_attempts_created_at",
        "outbox",
        ["state", "platform_id", "attempts", "created_at"],
    ),
    ("ix_sync_attempts_platform_id_started_at", "sync_attempts", ["platform_id", "started_at"]),
    ("ix_callback_inbox_received_at_id", "callback_inbox", ["received_at", "id"]),
    ("ix_admin_actions_target_id", "admin_actions", ["target_id"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)

"""webhook subscriptions; outbox rows of kind event

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 22:30:00.000000

Events pushed to the website are outbox rows of kind ``event`` on a platform row that backs
each subscription (see ``gateway.webhooks``); ``webhook_subscriptions`` says which events each
one wants.
"""

import sqlalchemy as sa
from alembic import op

from gateway.db import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_KINDS = "'register_member', 'update_member', 'erase_member', 'push_transfer', 'reverse_transfer'"


def upgrade() -> None:
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("platform_id", sa.String(length=36), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["platforms.id"],
            name=op.f("fk_webhook_subscriptions_platform_id_platforms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscriptions")),
        sa.UniqueConstraint("platform_id", name=op.f("uq_webhook_subscriptions_platform_id")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_outbox_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_outbox_kind"), f"kind IN ({_KINDS}, 'event')")


def downgrade() -> None:
    op.execute(
        "DELETE FROM sync_attempts WHERE outbox_id IN (SELECT id FROM outbox WHERE kind = 'event')"
    )
    op.execute("UPDATE outbox SET depends_on_id = NULL WHERE kind = 'event'")
    op.execute("DELETE FROM outbox WHERE kind = 'event'")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_outbox_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_outbox_kind"), f"kind IN ({_KINDS})")
    op.drop_table("webhook_subscriptions")

"""callback events wait between failed attempts

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 19:10:00.000000

An inbox event whose attempt failed is not tried again before ``next_attempt_at``; the
sweeper skips it until then, so a pile of failing events cannot take every sweep's places.
"""

import sqlalchemy as sa
from alembic import op

import gateway.db

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("callback_inbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("next_attempt_at", gateway.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("callback_inbox", schema=None) as batch_op:
        batch_op.drop_column("next_attempt_at")

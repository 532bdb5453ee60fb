"""partial reconciliation runs; outbox rows found by what they depend on

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 19:30:00.000000

A run that could not read some balances, or could not apply some transfers, ends ``partial``
and says how many: ``wallets_unreadable`` and ``transfers_unapplied``. Every delivered outbox
row looks up the rows that depend on it (a reversal waiting for, or dead with, its push), so
``depends_on_id`` is indexed.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outbox_depends_on_id"), ["depends_on_id"], unique=False
        )
    with op.batch_alter_table("reconciliation_runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("wallets_unreadable", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("transfers_unapplied", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.drop_constraint(op.f("ck_reconciliation_runs_state"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_reconciliation_runs_state"),
            "state IN ('running', 'succeeded', 'partial', 'failed')",
        )


def downgrade() -> None:
    op.execute("UPDATE reconciliation_runs SET state = 'succeeded' WHERE state = 'partial'")
    with op.batch_alter_table("reconciliation_runs", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_reconciliation_runs_state"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_reconciliation_runs_state"),
            "state IN ('running', 'succeeded', 'failed')",
        )
        batch_op.drop_column("transfers_unapplied")
        batch_op.drop_column("wallets_unreadable")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_depends_on_id"))

"""live links own their remote ids

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 15:25:40.150248

A remote account was unique over every link, erased ones included, so an account once
unlinked could never be linked again. The ids are now unique over live links only.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

LIVE = sa.text("state <> 'erased'")


def upgrade() -> None:
    with op.batch_alter_table("platform_links", schema=None) as batch_op:
        batch_op.drop_constraint("uq_platform_links_platform_id_remote_member_id", type_="unique")
        batch_op.drop_constraint("uq_platform_links_platform_id_remote_wallet_id", type_="unique")
        batch_op.create_index(
            "uq_platform_links_live_remote_member_id",
            ["platform_id", "remote_member_id"],
            unique=True,
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        )
        batch_op.create_index(
            "uq_platform_links_live_remote_wallet_id",
            ["platform_id", "remote_wallet_id"],
            unique=True,
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        )


def downgrade() -> None:
    # Erased links may share ids with live ones now; the old constraints would refuse them.
    op.execute(
        "UPDATE platform_links SET remote_member_id = NULL, remote_wallet_id = NULL "
        "WHERE state = 'erased'"
    )
    with op.batch_alter_table("platform_links", schema=None) as batch_op:
        batch_op.drop_index("uq_platform_links_live_remote_wallet_id")
        batch_op.drop_index("uq_platform_links_live_remote_member_id")
        batch_op.create_unique_constraint(
            "uq_platform_links_platform_id_remote_wallet_id", ["platform_id", "remote_wallet_id"]
        )
        batch_op.create_unique_constraint(
            "uq_platform_links_platform_id_remote_member_id", ["platform_id", "remote_member_id"]
        )

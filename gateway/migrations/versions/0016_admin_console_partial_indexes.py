"""partial and trigram indexes for the operators' console

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 22:05:00.000000

The console's busiest views read the few rows operators act on, spread through a million rows
of history: waiting rows (the failing and pending tabs, each platform's oldest waiting item),
dead and skipped rows by platform and kind, and failed attempts (the chart). Each gets a
partial index holding only those rows. The predicates are the text of
``gateway.admin.models``, repeated here as a migration must not import models that change.

Member search by any part of a name, email or id scanned every member; on PostgreSQL a trigram
index (the pg_trgm extension, trusted since PostgreSQL 13: the database's owner may create it)
answers it. Built on the benchmark's million outbox rows and 100,000 members in about 6 s,
during which the tables take no writes.
"""

import logging

import sqlalchemy as sa
from alembic import op

log = logging.getLogger(__name__)

revision = "0016"
down_revision = "0015"
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


def _trigrams_available() -> bool:
    """Whether pg_trgm is there, created here if this user may (True off PostgreSQL, where the
    index below is a plain one).

    A trusted extension since PostgreSQL 13, but creating it needs CREATE on the database: a
    deployment whose user lacks it still migrates, and member search stays correct, only slow.
    """
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return True
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as exc:
        log.warning(
            "pg_trgm could not be created (%s): member search works without its index, more "
            "slowly. To add it, a user with CREATE on the database runs CREATE EXTENSION "
            "pg_trgm and the index's CREATE INDEX from migration 0016",
            str(exc.orig).strip().splitlines()[0],
        )
        return False
    return True


def upgrade() -> None:
    for name, table, columns, where in INDEXES:
        op.create_index(name, table, columns, postgresql_where=where, sqlite_where=where)
    if not _trigrams_available():
        return
    op.create_index(
        "ix_members_search_trgm",
        "members",
        ["display_name", "email", "id"],
        postgresql_using="gin",
        postgresql_ops={c: "gin_trgm_ops" for c in ("display_name", "email", "id")},
    )


def downgrade() -> None:
    op.drop_index("ix_members_search_trgm", table_name="members", if_exists=True)
    for name, table, _, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)

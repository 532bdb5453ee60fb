"""The migrations: one linear history that builds exactly the schema the models describe."""

from __future__ import annotations

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from gateway.migrate import alembic_config, current_revisions, head_revisions, upgrade
from gateway.models import metadata


def _script(engine) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(engine))


def test_database_is_at_the_head(app):
    engine = app.extensions["db"].engine
    assert current_revisions(engine) == head_revisions(engine)


def test_history_is_one_line_numbered_without_gaps(app):
    script = _script(app.extensions["db"].engine)
    assert len(script.get_heads()) == 1
    # walk_revisions goes from the head down; every revision has at most one parent
    chain = [rev.revision for rev in script.walk_revisions()]
    assert chain == [f"{n:04d}" for n in range(len(chain), 0, -1)]
    for rev in script.walk_revisions():
        assert not rev.is_merge_point
        assert len(rev.nextrev) <= 1, f"{rev.revision} has several children"


def test_models_and_migrations_agree(app):
    with app.extensions["db"].engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_a_database_of_the_old_two_branch_history_upgrades(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0008")  # the schema of the old history's two heads
    # What a database migrated before the history was made linear holds.
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM alembic_version"))
        connection.execute(text("INSERT INTO alembic_version VALUES ('0003'), ('0011')"))
    upgrade(engine)
    assert current_revisions(engine) == head_revisions(engine)
    engine.dispose()


@pytest.mark.postgres
def test_a_user_who_cannot_create_pg_trgm_still_migrates(app, caplog):
    """pg_trgm needs CREATE on the database: without it the search index is left out."""
    engine = app.extensions["db"].engine
    if engine.dialect.name != "postgresql":
        pytest.skip("extensions are PostgreSQL's: set TEST_DATABASE_URL to run this")
    suffix = uuid.uuid4().hex[:8]
    role, database = f"gw_no_create_{suffix}", f"gw_no_create_{suffix}"
    admin = create_engine(engine.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    owner = create_engine(engine.url.set(database=database), isolation_level="AUTOCOMMIT")
    with owner.connect() as connection:
        connection.execute(text(f'GRANT USAGE, CREATE ON SCHEMA public TO "{role}"'))
    owner.dispose()
    limited = create_engine(engine.url.set(database=database, username=role, password=None))
    try:
        upgrade(limited)
        with limited.connect() as connection:
            indexes = set(
                connection.execute(
                    text("SELECT indexname FROM pg_indexes WHERE tablename = 'members'")
                ).scalars()
            )
            assert current_revisions(limited) == head_revisions(limited)
        assert "ix_members_search_trgm" not in indexes
        assert "pg_trgm could not be created" in caplog.text
    finally:
        limited.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            connection.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()

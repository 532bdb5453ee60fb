"""The migrations: one linear history that builds exactly the schema the models describe."""

from __future__ import annotations

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
    # The old history's last head ("0011") is the linear history's 0008.
    upgrade(engine, "0008")
    # What a database migrated before the history was made linear holds.
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM alembic_version"))
        connection.execute(text("INSERT INTO alembic_version VALUES ('0003'), ('0011')"))
    upgrade(engine)
    assert current_revisions(engine) == head_revisions(engine)
    engine.dispose()

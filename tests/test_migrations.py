"""The migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from gateway.migrate import current_revisions, head_revisions
from gateway.models import metadata


def test_database_is_at_every_head(app):
    engine = app.extensions["db"].engine
    assert current_revisions(engine) == head_revisions(engine)


def test_models_and_migrations_agree(app):
    with app.extensions["db"].engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []

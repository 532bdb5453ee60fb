"""Schema migrations with Alembic, driven from code (no alembic.ini to keep in sync)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    """An Alembic config pointing at the gateway's migrations and ``engine``'s database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


# Until 0.1.0 the history had two branches: 0003 beside 0004, 0008, 0009, 0010 and 0011.
# A database migrated then holds two version rows, "0003" and the other branch's head; it is
# moved onto the linear history's ids so that it upgrades like any other.
_BRANCHED_IDS = {"0004": "0004", "0008": "0005", "0009": "0006", "0010": "0007", "0011": "0008"}


def adopt_linear_history(connection: Connection) -> None:
    """Rename a database's version rows from the old two-branch history, if it has them."""
    if not inspect(connection).has_table("alembic_version"):
        return
    rows = set(connection.scalars(text("SELECT version_num FROM alembic_version")))
    if len(rows) != 2 or "0003" not in rows:
        return
    (other,) = rows - {"0003"}
    connection.execute(text("DELETE FROM alembic_version"))
    connection.execute(
        text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": _BRANCHED_IDS[other]}
    )


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (default: the head)."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        adopt_linear_history(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revisions(engine: Engine) -> set[str]:
    """Revisions the database is at."""
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def head_revisions(engine: Engine) -> set[str]:
    """Revisions the code expects."""
    return set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())


def revision(engine: Engine, message: str, rev_id: str | None = None) -> None:
    """Autogenerate a new revision from the difference between models and database."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True, rev_id=rev_id)

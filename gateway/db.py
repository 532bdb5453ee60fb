"""The database: typed declarative base, engine and the per-context session."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, cast

from flask import Flask, current_app
from sqlalchemy import DateTime, MetaData, Table, create_engine, event, text
from sqlalchemy.engine import CursorResult, Engine, Result
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import (
    DeclarativeBase,
    Session,
    make_transient_to_detached,
    scoped_session,
    sessionmaker,
)
from sqlalchemy.types import TypeDecorator
from werkzeug.local import LocalProxy

# Stable constraint names keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every gateway model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use gateway.db.utcnow()")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the web server read while a worker writes; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL still survives an application crash; only an OS crash may lose the
    # last commits. SQLite is the single-machine default; production runs on PostgreSQL.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


# A pooled connection given back less than this long ago is handed out again without a ping:
# a round trip on every checkout cost more than any other statement of a request, and one that
# is in steady use has just proven itself (PgBouncer's server_check_delay, 30 s by default, rests
# on the same reasoning). A server restart within the window fails that connection's request
# once, and the pool then drops its connections.
PING_AFTER_IDLE_SECONDS = 10.0
_RETURNED_AT = "gateway_returned_at"


def _ping_when_idle(engine: Engine) -> None:
    """Ping a connection on checkout only after it sat idle for ``PING_AFTER_IDLE_SECONDS``."""

    def returned(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_RETURNED_AT] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle = time.monotonic() - record.info.get(_RETURNED_AT, time.monotonic())
        if idle < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool drops this connection and hands out another (a fresh one if need be).
            raise DisconnectionError(f"pooled connection failed its ping: {exc}") from exc

    event.listen(engine, "connect", returned)  # a new connection counts as just used
    event.listen(engine, "checkin", returned)
    event.listen(engine, "checkout", checkout)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the settings each backend needs."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(url, **{"pool_size": 10, "max_overflow": 20, **kwargs})
    _ping_when_idle(engine)
    return engine


class Database:
    """Owns the engine and a session scoped to the Flask application context."""

    def __init__(self) -> None:
        self._engine: Engine | None = None
        self._session: scoped_session[Session] | None = None

    def init_app(self, app: Flask) -> None:
        """Bind to ``app``: one engine per app, sessions removed at context teardown."""
        self._engine = make_engine(app.config["DATABASE_URL"])
        factory = sessionmaker(bind=self._engine, expire_on_commit=False)
        self._session = scoped_session(factory)
        app.extensions["db"] = self

        @app.teardown_appcontext
        def _remove_session(_exc: BaseException | None) -> None:
            if self._session is not None:
                self._session.remove()

    @property
    def engine(self) -> Engine:
        """The engine; raises if the database was never bound to an app."""
        if self._engine is None:
            raise RuntimeError("the database is not bound: call create_app() first")
        return self._engine

    @property
    def session(self) -> Session:
        """The session of the current context."""
        if self._session is None:
            raise RuntimeError("the database is not bound: call create_app() first")
        return self._session()

    def remove(self) -> None:
        """Close the current session and return its connection to the pool."""
        if self._session is not None:
            self._session.remove()

    def ping(self) -> None:
        """Run a trivial query; raises when the database does not answer."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def forget_after_fork(self) -> None:
        """In a forked child: drop the parent's pool and sessions without touching them."""
        if self._engine is not None:
            self._engine.dispose(close=False)
        if self._session is not None:
            self._session.registry.clear()

    def dispose(self) -> None:
        """Close pooled connections (after fork, or at shutdown)."""
        if self._engine is not None:
            self._engine.dispose()


def add_as_loaded(session: Session, *objects: Base) -> None:
    """Put objects whose rows a Core INSERT just wrote into ``session`` as loaded rows.

    No SQL: on hot paths a Core insert costs less than the unit of work's flush, and the objects
    then behave as if flushed and read back. Every column must be set on them.
    """
    for obj in objects:
        make_transient_to_detached(obj)
    session.add_all(objects)


def get_db(app: Flask) -> Database:
    """The ``Database`` bound to ``app``."""
    return app.extensions["db"]


def _current_db() -> Database:
    return current_app.extensions["db"]


# Resolved per application context, so several apps (tests, the sandbox) can coexist.
db: Database = LocalProxy(_current_db)  # type: ignore[assignment]


def rows_affected(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE touched (`Session.execute` types it as any result)."""
    return cast(CursorResult[Any], result).rowcount


def table_of(model: type[Base]) -> Table:
    """A mapped class's table, for Core statements the ORM would slow down."""
    return cast(Table, model.__table__)

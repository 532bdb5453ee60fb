"""Pooled PostgreSQL connections: pinged on checkout only after sitting idle."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from gateway import db as gateway_db
from gateway.db import make_engine


@pytest.fixture
def pg_engine(database_server: dict):
    if database_server["kind"] != "postgresql":
        pytest.skip("the idle ping is for server databases: set TEST_DATABASE_URL to run this")
    engine = make_engine(database_server["url"], pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


@pytest.fixture
def pings(pg_engine, monkeypatch) -> list[object]:
    """The connections the engine pinged, in order."""
    seen: list[object] = []
    real = pg_engine.dialect.do_ping

    def counted(dbapi_connection):
        seen.append(dbapi_connection)
        return real(dbapi_connection)

    monkeypatch.setattr(pg_engine.dialect, "do_ping", counted)
    return seen


def _backend_pid(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT pg_backend_pid()")).scalar_one()


def test_a_connection_in_steady_use_is_not_pinged(pg_engine, pings):
    first = _backend_pid(pg_engine)
    assert _backend_pid(pg_engine) == first  # the same pooled connection, handed out again
    assert pings == []


def test_an_idle_connection_that_died_is_replaced_before_use(pg_engine, pings, monkeypatch):
    dead = _backend_pid(pg_engine)
    killer = create_engine(pg_engine.url, poolclass=NullPool)
    with killer.connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": dead})
    killer.dispose()
    monkeypatch.setattr(gateway_db, "PING_AFTER_IDLE_SECONDS", 0.0)

    fresh = _backend_pid(pg_engine)

    assert fresh != dead
    assert pings[0].closed  # the dead one was pinged, failed, and was dropped

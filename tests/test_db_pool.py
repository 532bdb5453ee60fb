"""Pooled PostgreSQL connections: pinged on checkout only after sitting idle."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from gateway import db as gateway_db
from gateway.db import db, make_engine


@pytest.fixture
def server_url(database_server: dict) -> str:
    """The run's PostgreSQL database (SQLite has no pool to ping)."""
    if database_server["kind"] != "postgresql":
        pytest.skip("the idle ping is for server databases: set TEST_DATABASE_URL to run this")
    return database_server["url"]


@pytest.fixture
def pg_engine(server_url: str):
    engine = make_engine(server_url, pool_size=1, max_overflow=0)
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


def _terminate(url, pid: int) -> None:
    """End a server process as a restart would, from a connection of its own."""
    killer = create_engine(url, poolclass=NullPool)
    with killer.connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    killer.dispose()


def _backend_pid(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT pg_backend_pid()")).scalar_one()


def test_a_connection_in_steady_use_is_not_pinged(pg_engine, pings):
    first = _backend_pid(pg_engine)
    assert _backend_pid(pg_engine) == first  # the same pooled connection, handed out again
    assert pings == []


def test_an_idle_connection_that_died_is_replaced_before_use(pg_engine, pings, monkeypatch):
    dead = _backend_pid(pg_engine)
    _terminate(pg_engine.url, dead)
    monkeypatch.setattr(gateway_db, "PING_AFTER_IDLE_SECONDS", 0.0)

    fresh = _backend_pid(pg_engine)

    assert fresh != dead
    assert pings[0].closed  # the dead one was pinged, failed, and was dropped


def test_after_a_server_restart_a_request_fails_once_and_the_pool_recovers(server_url, app, client):
    with app.app_context():
        pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        db.session.commit()  # the connection goes back to the pool, used just now
    _terminate(server_url, pid)

    failed = client.get("/readyz")  # handed the dead connection: no ping within 10 s of use
    recovered = client.get("/readyz")

    assert failed.status_code == 503
    assert list(failed.get_json()["failing"]) == ["database"]
    assert recovered.status_code == 200

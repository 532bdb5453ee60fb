"""Fixtures: an isolated database and Redis for every test, on real servers.

Database: SQLite by default (a migrated template copied per test), or
PostgreSQL when TEST_DATABASE_URL names one (a database per run, migrated
once, emptied after each test). Redis: REDIS_URL when set (flushed after each
test), else an embedded server started for the run.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from gateway import create_app, embedded_redis
from gateway.config import normalize_database_url
from gateway.db import Base
from gateway.migrate import upgrade

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis for the run: REDIS_URL, or an embedded server."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    server = embedded_redis.start(tmp_path_factory.mktemp("redis"))
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def database_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Create and migrate the run's database once."""
    server_url = os.environ.get("TEST_DATABASE_URL")
    if not server_url:
        template = tmp_path_factory.mktemp("db") / "template.db"
        engine = create_engine(f"sqlite:///{template}")
        upgrade(engine)
        engine.dispose()
        yield {"kind": "sqlite", "template": template}
        return
    server = make_url(normalize_database_url(server_url))
    name = f"gw_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
        # A test database needs no durability: commits stop waiting for the WAL's flush.
        connection.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    url = server.set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    upgrade(engine)
    yield {"kind": "postgresql", "url": url, "engine": engine}
    engine.dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _empty_tables(engine) -> None:
    """Empty every table and restart its sequences, as a fresh migrated database would be.

    TRUNCATE costs 0.3-0.8 s for the schema's 25 tables, once per test; DELETE with
    triggers off (the ledger's append-only guard, foreign keys) costs about 20 ms. Turning
    triggers off needs a superuser; other roles fall back to TRUNCATE.
    """
    tables = [t.name for t in Base.metadata.sorted_tables]
    if not tables:
        return
    with engine.begin() as connection:
        if not connection.execute(
            text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        ).scalar():
            joined = ", ".join(f'"{t}"' for t in tables)
            connection.execute(text(f"TRUNCATE {joined} RESTART IDENTITY CASCADE"))
            return
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        for table in tables:
            connection.execute(text(f'DELETE FROM "{table}"'))
        sequences = connection.execute(
            text(
                "SELECT pg_get_serial_sequence(quote_ident(table_name), column_name) "
                "FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND (column_default LIKE 'nextval%' OR is_identity = 'YES')"
            )
        ).scalars()
        for sequence in sequences:
            connection.execute(text(f"ALTER SEQUENCE {sequence} RESTART"))


@pytest.fixture
def database_url(database_server: dict, tmp_path: Path) -> Iterator[str]:
    """A database for one test, migrated and empty."""
    if database_server["kind"] == "sqlite":
        path = tmp_path / "gateway.db"
        shutil.copyfile(database_server["template"], path)
        yield f"sqlite:///{path}"
        return
    yield database_server["url"]
    _empty_tables(database_server["engine"])


@pytest.fixture
def redis_conn(redis_url: str) -> Iterator[redis.Redis]:
    """A Redis client on the run's server, emptied after the test."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def app_config(database_url: str, redis_url: str, tmp_path: Path) -> dict:
    """The configuration every test app starts from."""
    return {
        "GATEWAY_ENV": "testing",
        "TESTING": True,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": TEST_SECRET,
        "GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "QUEUE_NAME": f"test-{uuid.uuid4().hex[:8]}",
        # scrypt at production cost is 0.15 s of CPU per hash, and the suite hashes hundreds.
        "PASSWORD_HASH_METHOD": "scrypt:1024:8:1",
    }


@pytest.fixture
def make_app(app_config: dict, redis_conn: redis.Redis) -> Iterator:
    """Build apps on the test's config (plus overrides); their connections close after."""
    made: list[Flask] = []

    def build(**overrides) -> Flask:
        application = create_app({**app_config, **overrides})
        made.append(application)
        return application

    yield build
    for application in made:
        application.extensions["db"].dispose()
        application.extensions["redis"].close()


@pytest.fixture
def app(make_app) -> Flask:
    """A fresh gateway app on the test's database and Redis."""
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """An HTTP test client."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """A CLI runner bound to the app (the `flask --app gateway` commands)."""
    return app.test_cli_runner()


@pytest.fixture
def db_session(app: Flask) -> Iterator:
    """The app's session inside an application context."""
    with app.app_context():
        yield app.extensions["db"].session


@pytest.fixture
def unused_port() -> int:
    """A loopback TCP port nothing listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def unused_port_block() -> int:
    """A port P with P, P+1 and P+2 free (`gateway run` serves on all three).

    Below the kernel's ephemeral range, so that no client connection of another test takes
    P+1 or P+2 between this check and the server's bind.
    """
    import random
    import socket

    for _ in range(200):
        port = random.randrange(20000, 30000)  # noqa: S311 - a port, not a secret
        try:
            for offset in range(3):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port + offset))
        except OSError:
            continue
        return port
    raise RuntimeError("no block of three free ports below 30000")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that drives Chromium ``browser`` (CI runs those once, not per database)."""
    for item in items:
        if "chromium" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


# One Chromium serves a run of consecutive browser tests: launching it costs 1-2 s, and the
# browser tests sit together. It is closed as soon as the next test needs none, because sync
# Playwright leaves its event loop marked running, and asyncio.run() refuses to start beside it.
_shared_chromium: dict = {}


@pytest.fixture
def chromium() -> Iterator:
    """A headless Chromium driven by Playwright: Debian's package, found by its path.

    Each test gets the shared browser; the contexts and pages it opened close after it.
    """
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip(
            "no chromium executable on PATH (apt-get install chromium): browser test skipped"
        )
    if "browser" not in _shared_chromium:
        from playwright.sync_api import sync_playwright

        playwright = sync_playwright().start()
        _shared_chromium["playwright"] = playwright
        _shared_chromium["browser"] = playwright.chromium.launch(
            executable_path=path, args=["--no-sandbox"]
        )
    browser = _shared_chromium["browser"]
    yield browser
    for context in list(browser.contexts):
        context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    """Close the shared Chromium after the last of a run of browser tests."""
    result = yield
    if "browser" in _shared_chromium and (
        nextitem is None or "chromium" not in getattr(nextitem, "fixturenames", ())
    ):
        _shared_chromium.pop("browser").close()
        _shared_chromium.pop("playwright").stop()
    return result

"""The sandbox store's connection pool."""

from __future__ import annotations

import sqlite3

import pytest

from gateway_sandbox.store import POOL_SIZE, Store


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "sandbox.db")
    store.initialize()
    yield store
    store.close()


def test_a_connection_is_used_again(store):
    with store.reading() as first:
        pass
    with store.transaction() as second:
        second.execute("INSERT INTO faults (name, value) VALUES ('x', '1')")
    assert first is second
    with store.reading() as third:
        assert third.execute("SELECT value FROM faults WHERE name = 'x'").fetchone()[0] == "1"


def _failing_write(store, seen: list) -> None:
    with store.transaction() as connection:
        seen.append(connection)
        connection.execute("INSERT INTO faults (name, value) VALUES ('y', '1')")
        raise RuntimeError("refused")


def test_a_failed_transaction_rolls_back_and_the_connection_stays_usable(store):
    seen: list = []
    with pytest.raises(RuntimeError):
        _failing_write(store, seen)
    (connection,) = seen
    with store.reading() as again:
        assert again is connection
        assert again.execute("SELECT count(*) FROM faults WHERE name = 'y'").fetchone()[0] == 0


def test_a_connection_left_in_a_transaction_is_closed_not_pooled(store):
    with store.borrowed() as connection:
        connection.execute("BEGIN")
    with store.borrowed() as other:
        assert other is not connection
    with pytest.raises(sqlite3.ProgrammingError):
        connection.execute("SELECT 1")


def test_the_pool_keeps_at_most_its_size_and_close_empties_it(store):
    held = [store.borrowed() for _ in range(POOL_SIZE + 2)]
    connections = [context.__enter__() for context in held]
    for context in held:
        context.__exit__(None, None, None)
    assert len({id(c) for c in connections}) == POOL_SIZE + 2
    store.close()
    closed = 0
    for connection in connections:
        try:
            connection.execute("SELECT 1")
        except sqlite3.ProgrammingError:
            closed += 1
    assert closed == POOL_SIZE + 2

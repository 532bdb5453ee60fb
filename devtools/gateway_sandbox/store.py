"""The sandbox's state: one SQLite file, safe for several threads and processes at once.

Every write runs in ``transaction()``, which takes SQLite's write lock up front (``BEGIN
IMMEDIATE``): concurrent writers queue instead of failing halfway, so an idempotency check and the
effect it guards can never interleave with another request's. WAL lets readers go on meanwhile.

Connections are kept in a small pool between uses: opening one per use cost more than the
request's own statements, and closing the last one checkpointed the WAL every time.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["Store"]

POOL_SIZE = 8

SCHEMA = """
CREATE TABLE IF NOT EXISTS clients (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    client_id TEXT,                -- the partner that registered it; NULL for native members
    external_id TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL,
    email_key TEXT UNIQUE,         -- casefolded email; NULL once erased, freeing the address
    display_name TEXT NOT NULL,
    locale TEXT NOT NULL,
    skills TEXT NOT NULL,
    status TEXT NOT NULL,
    wallet_id TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS wallets (
    id TEXT PRIMARY KEY,
    member_id TEXT NOT NULL,
    client_id TEXT,                -- set for a partner's own clearing wallet
    balance INTEGER NOT NULL DEFAULT 0,
    credit_limit INTEGER NOT NULL,
    closed INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS links (
    client_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    PRIMARY KEY (client_id, member_id)
);
CREATE TABLE IF NOT EXISTS transfers (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    client_id TEXT,
    payer_wallet_id TEXT NOT NULL,
    payee_wallet_id TEXT NOT NULL,
    minutes INTEGER NOT NULL,
    description TEXT NOT NULL,
    external_reference TEXT NOT NULL,
    occurred_at TEXT,
    status TEXT NOT NULL,
    reversal_of TEXT,
    reversed_by TEXT,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS transfers_reference ON transfers (client_id, external_reference);
CREATE INDEX IF NOT EXISTS transfers_payer ON transfers (payer_wallet_id);
CREATE INDEX IF NOT EXISTS transfers_payee ON transfers (payee_wallet_id);
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,            -- access or refresh
    client_id TEXT NOT NULL,
    member_id TEXT,                -- set for a member's token (authorization code)
    scope TEXT NOT NULL,
    expires_at REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS codes (
    hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    challenge TEXT NOT NULL,
    scope TEXT NOT NULL,
    expires_at REAL NOT NULL,
    used INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS idempotency (
    client_id TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    body BLOB NOT NULL,
    content_type TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (client_id, key)
);
CREATE INDEX IF NOT EXISTS idempotency_age ON idempotency (created_at);
CREATE TABLE IF NOT EXISTS endpoints (
    client_id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    events TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL,
    type TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    state TEXT NOT NULL,           -- pending, sending, delivered or failed
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    lease_until REAL,
    last_status INTEGER,
    last_error TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_attempt_at);
CREATE TABLE IF NOT EXISTS faults (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS injected_faults (
    kind TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
"""

DATA_TABLES = (
    "members",
    "wallets",
    "links",
    "transfers",
    "tokens",
    "codes",
    "idempotency",
    "endpoints",
    "events",
    "deliveries",
    "faults",
    "injected_faults",
)


class Store:
    """Connections to the sandbox's SQLite file, pooled; safe for many threads and processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def connect(self) -> sqlite3.Connection:
        """A new connection in autocommit mode (transactions are explicit)."""
        connection = sqlite3.connect(
            self.path, timeout=15.0, isolation_level=None, check_same_thread=False
        )
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA busy_timeout = 15000")
        # WAL with NORMAL stays consistent after a crash and skips an fsync per commit: a
        # sandbox may lose its last writes to a power cut, not its integrity.
        connection.execute("PRAGMA synchronous = NORMAL")
        return connection

    def initialize(self) -> None:
        """Create the file and its tables (idempotent)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = self.connect()
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            connection.executescript(SCHEMA)
        finally:
            connection.close()

    @contextmanager
    def borrowed(self) -> Iterator[sqlite3.Connection]:
        """An autocommit connection from the pool, given back (or closed) afterwards."""
        with self._lock:
            connection = self._idle.pop() if self._idle else None
        if connection is None:
            connection = self.connect()
        try:
            yield connection
        finally:
            self._give_back(connection)

    def _give_back(self, connection: sqlite3.Connection) -> None:
        if not connection.in_transaction:
            with self._lock:
                if len(self._idle) < POOL_SIZE:
                    self._idle.append(connection)
                    return
        connection.close()  # one left mid-transaction is not trusted again

    def close(self) -> None:
        """Close the idle connections (the server stopped)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the write lock from its start; rolled back on error."""
        with self.borrowed() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A connection for reads (one consistent snapshot per statement)."""
        with self.borrowed() as connection:
            yield connection

    def wipe(self, connection: sqlite3.Connection) -> None:
        """Delete every member, transfer, token, endpoint, delivery and fault setting."""
        for table in DATA_TABLES:
            connection.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names

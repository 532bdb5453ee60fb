"""Webhooks sent to partners, signed per Standard Webhooks, from a background thread.

An event is written in the same transaction as the change it reports (an outbox), with the exact
body bytes it will carry, so every retry sends the same body under the same ``webhook-id``.
``Dispatcher`` claims due deliveries with a lease (several processes may run one), POSTs them,
and retries failures with exponential backoff until ``SANDBOX_WEBHOOK_MAX_ATTEMPTS``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import random
import secrets
import sqlite3
import threading
import time
from collections.abc import Sequence
from typing import Any

import requests

from gateway_sandbox.faults import Faults, count_fault, load_faults
from gateway_sandbox.store import Store

__all__ = ["Dispatcher", "enqueue_event", "new_secret", "retry_schedule", "sign"]

log = logging.getLogger(__name__)

LEASE_SECONDS = 30.0
BATCH = 20
_dice = random.Random()  # noqa: S311 - fault dice, not cryptography


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def secret_bytes(secret: str) -> bytes:
    """The key bytes of a ``whsec_`` secret; ValueError if it is not one."""
    if not secret.startswith("whsec_"):
        raise ValueError("a signing secret starts with whsec_")
    key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    if len(key) < 16:
        raise ValueError("a signing secret has at least 16 bytes")
    return key


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,`` and the base64 HMAC-SHA256 of id.timestamp.body."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def retry_schedule(max_attempts: int, base: float, cap: float) -> list[float]:
    """The waits between a failing delivery's attempts: doubling from ``base``, at most ``cap``.

    Their sum is how long the partner keeps trying before it gives an event up.
    """
    return [min(cap, base * 2**attempt) for attempt in range(max_attempts - 1)]


def enqueue_event(
    connection: sqlite3.Connection,
    client_ids: Sequence[str],
    kind: str,
    data: dict[str, Any],
    created_at: str,
    faults: Faults,
) -> None:
    """Record an event for each client with an endpoint that wants ``kind``."""
    now = time.time()
    for client_id in client_ids:
        endpoint = connection.execute(
            "SELECT events FROM endpoints WHERE client_id = ?", (client_id,)
        ).fetchone()
        if endpoint is None:
            continue
        wanted = json.loads(endpoint["events"])
        if wanted and kind not in wanted:
            continue
        event_id = "evt_" + secrets.token_hex(12)
        payload = json.dumps(
            {"id": event_id, "type": kind, "created_at": created_at, "data": data},
            separators=(",", ":"),
        ).encode()
        connection.execute(
            "INSERT INTO events (id, client_id, type, payload, created_at) VALUES (?, ?, ?, ?, ?)",
            (event_id, client_id, kind, payload, now),
        )
        copies = 1
        if faults.duplicate_webhooks or _roll(faults.duplicate_webhook_rate):
            copies = 2
            count_fault(connection, "duplicated_webhook")
        for _ in range(copies):
            # A held-back delivery is overtaken by the events recorded after it.
            due = now
            if _roll(faults.reorder_webhook_rate):
                due += _dice.uniform(0.5, 1.0) * faults.reorder_window_ms / 1000
                count_fault(connection, "reordered_webhook")
            connection.execute(
                "INSERT INTO deliveries (event_id, client_id, state, next_attempt_at, created_at) "
                "VALUES (?, ?, 'pending', ?, ?)",
                (event_id, client_id, due, now),
            )


def _roll(rate: float) -> bool:
    return bool(rate) and _dice.random() < rate


class Dispatcher:
    """Delivers pending webhooks from a daemon thread until ``stop()``."""

    def __init__(self, store: Store, settings: dict[str, Any]) -> None:
        self.store = store
        self.default_faults: Faults = settings["SANDBOX_FAULTS"]
        self.max_attempts = int(settings["SANDBOX_WEBHOOK_MAX_ATTEMPTS"])
        self.retry_base = float(settings["SANDBOX_WEBHOOK_RETRY_BASE_SECONDS"])
        self.retry_cap = float(settings["SANDBOX_WEBHOOK_MAX_BACKOFF_SECONDS"])
        self.poll = float(settings["SANDBOX_WEBHOOK_POLL_SECONDS"])
        self.timeout = float(settings["SANDBOX_WEBHOOK_TIMEOUT_SECONDS"])
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._session = requests.Session()

    def start(self) -> None:
        """Start delivering in a daemon thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread (waiting at most ``timeout`` seconds for a send in progress)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._session.close()

    def wake(self) -> None:
        """Deliver now rather than at the next poll (an event was just recorded)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.deliver_due()
            except Exception:  # the thread must outlive a locked or vanished database
                log.exception("webhook delivery round failed")
                sent = 0
            if not sent:
                self._wake.wait(self.poll)
                self._wake.clear()

    def deliver_due(self) -> int:
        """Send every delivery that is due now; returns how many were attempted."""
        claimed = self._claim()
        for delivery in claimed:
            if self._stop.is_set():
                break
            self._send(delivery)
        return len(claimed)

    def _claim(self) -> list[sqlite3.Row]:
        now = time.time()
        with self.store.transaction() as connection:
            faults = load_faults(connection, self.default_faults)
            if faults.reorder_webhooks and self._burst_going_on(connection, faults, now):
                return []
            # Newest first when reordering is on: the held events then arrive out of order.
            order = "d.id DESC" if faults.reorder_webhooks else "d.id ASC"
            rows = connection.execute(
                "SELECT d.id, d.event_id, d.attempts, e.payload, e.created_at AS event_created, "  # noqa: S608 - order is one of two constants
                "n.url, n.secret FROM deliveries d "
                "JOIN events e ON e.id = d.event_id "
                "LEFT JOIN endpoints n ON n.client_id = d.client_id "
                "WHERE (d.state = 'pending' AND d.next_attempt_at <= ?) "
                "OR (d.state = 'sending' AND d.lease_until < ?) "
                f"ORDER BY {order} LIMIT ?",
                (now, now, BATCH),
            ).fetchall()
            connection.executemany(
                "UPDATE deliveries SET state = 'sending', lease_until = ? WHERE id = ?",
                [(now + LEASE_SECONDS, row["id"]) for row in rows],
            )
        return rows

    @staticmethod
    def _burst_going_on(connection: sqlite3.Connection, faults: Faults, now: float) -> bool:
        """Whether a new event came within the reorder window (so deliveries are held)."""
        latest = connection.execute(
            "SELECT MAX(created_at) FROM deliveries WHERE state = 'pending' AND attempts = 0"
        ).fetchone()[0]
        return latest is not None and latest > now - faults.reorder_window_ms / 1000

    def _send(self, delivery: sqlite3.Row) -> None:
        attempts = delivery["attempts"] + 1
        status: int | None = None
        error: str | None = None
        if delivery["url"] is None:
            error = "no endpoint registered"
        else:
            timestamp = int(time.time())
            body = bytes(delivery["payload"])
            headers = {
                "content-type": "application/json",
                "webhook-id": delivery["event_id"],
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign(
                    delivery["secret"], delivery["event_id"], timestamp, body
                ),
            }
            try:
                response = self._session.post(
                    delivery["url"],
                    data=body,
                    headers=headers,
                    timeout=(min(2.0, self.timeout), self.timeout),
                    allow_redirects=False,
                )
                status = response.status_code
                response.close()
            except requests.RequestException as exc:
                error = type(exc).__name__
        self._record(delivery["id"], attempts, status, error)

    def _record(
        self, delivery_id: int, attempts: int, status: int | None, error: str | None
    ) -> None:
        delivered = status is not None and 200 <= status < 300
        if delivered:
            state, next_at = "delivered", 0.0
        elif attempts >= self.max_attempts:
            state, next_at = "failed", 0.0
        else:
            backoff = min(self.retry_cap, self.retry_base * 2 ** (attempts - 1))
            state, next_at = "pending", time.time() + backoff
        with self.store.transaction() as connection:
            connection.execute(
                "UPDATE deliveries SET state = ?, attempts = ?, next_attempt_at = ?, "
                "lease_until = NULL, last_status = ?, last_error = ? WHERE id = ?",
                (
                    state,
                    attempts,
                    next_at,
                    status,
                    error or (None if delivered else f"HTTP {status}"),
                    delivery_id,
                ),
            )
        if not delivered:
            log.info(
                "webhook delivery %s failed (%s), attempt %d",
                delivery_id,
                error or status,
                attempts,
            )

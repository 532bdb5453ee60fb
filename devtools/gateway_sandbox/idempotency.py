"""Idempotency-Key replay, as the contract promises.

Same key and same request within 24 h: the first answer again (status and body), marked
``Idempotent-Replayed: true``. Same key, different request: 422 ``idempotency_mismatch``.
The check, the effect and the stored answer share one write transaction, so two concurrent
requests with one key act once: the second waits for the lock, then replays. Answers of 5xx
and 429 are not stored (nothing was done; a retry must be able to do it).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, request

from gateway_sandbox.problems import PROBLEM_JSON, SandboxProblem

__all__ = ["KEY_TTL_SECONDS", "idempotent"]

KEY_TTL_SECONDS = 24 * 3600

Operation = Callable[[sqlite3.Connection], tuple[int, Any]]


def _key() -> str:
    key = request.headers.get("Idempotency-Key", "")
    if not 1 <= len(key) <= 255:
        raise SandboxProblem(
            422,
            "validation_error",
            "the Idempotency-Key header is required (1 to 255 characters)",
            errors={"Idempotency-Key": ["required, 1 to 255 characters"]},
        )
    return key


def _fingerprint() -> str:
    raw = request.get_data()
    try:
        # Equal JSON is the same request whatever its key order or spacing.
        canonical = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = raw
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode() + canonical)
    return digest.hexdigest()


def _answer(status: int, body: bytes, content_type: str, *, replayed: bool) -> Response:
    response = Response(body, status=status, content_type=content_type)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def idempotent(client_id: str, operation: Operation) -> Response:
    """Run ``operation`` once per Idempotency-Key; a repeat gets the stored answer."""
    key, fingerprint = _key(), _fingerprint()
    store = current_app.extensions["sandbox"].store
    with store.transaction() as connection:
        connection.execute(
            "DELETE FROM idempotency WHERE created_at < ?", (time.time() - KEY_TTL_SECONDS,)
        )
        stored = connection.execute(
            "SELECT * FROM idempotency WHERE client_id = ? AND key = ?", (client_id, key)
        ).fetchone()
        if stored is not None:
            if stored["fingerprint"] != fingerprint:
                raise SandboxProblem(
                    422,
                    "idempotency_mismatch",
                    "this Idempotency-Key was used with another request",
                )
            return _answer(
                stored["status"], bytes(stored["body"]), stored["content_type"], replayed=True
            )
        # The effect rolls back on a problem; the problem itself is still the stored answer.
        connection.execute("SAVEPOINT operation")
        try:
            status, document = operation(connection)
            body = b"" if document is None else json.dumps(document).encode()
            content_type = "application/json"
        except SandboxProblem as problem:
            connection.execute("ROLLBACK TO operation")
            status, body, content_type = (
                problem.status,
                json.dumps(problem.body()).encode(),
                PROBLEM_JSON,
            )
        connection.execute("RELEASE operation")
        if status < 500 and status != 429:
            connection.execute(
                "INSERT INTO idempotency (client_id, key, fingerprint, status, body, content_type, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (client_id, key, fingerprint, status, body, content_type, time.time()),
            )
    current_app.extensions["sandbox"].dispatcher.wake()
    return _answer(status, body, content_type, replayed=False)

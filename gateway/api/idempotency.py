"""``Idempotency-Key`` on every API POST: one key, one effect, the first response replayed.

A known key is answered from its row: the same request gets the stored response again
(``Idempotent-Replayed: true``), another request under the same key gets 422
``idempotency_mismatch``. The view runs first, and the key's row is inserted with its response
in the view's own transaction, just before the commit: the posting and its stored response commit
together (never one without the other), and the database's unique (client, key) decides. So a
new key, by far the usual case, costs no read. A known key's insert fails (on PostgreSQL a
concurrent request's insert waits for the first one's commit), its transaction, posting
included, rolls back, and it answers with the stored response. So at most one request per key
ever posts, with one commit per request; a replay costs a run that is rolled back.

Views under ``@idempotent`` do not commit and have no effect outside the database before the
commit. Client errors (4xx) are stored and replayed like successes; a server error (5xx) rolls
back and stores nothing, so the client may retry with the key. An expired row names nothing: it
is replaced.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Response, current_app, make_response, request
from sqlalchemy import CursorResult, Row, bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError

from gateway.api.errors import problem_for
from gateway.api.models import IdempotencyKey
from gateway.auth.resource import current_token
from gateway.db import db, table_of, utcnow
from gateway.jobs import task
from gateway.members.models import new_id
from gateway.problems import Problem, problem_response

F = TypeVar("F", bound=Callable[..., Any])

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_LIFETIME = timedelta(hours=24)
MAX_KEY_LENGTH = 255
# Headers that belong to the response itself and are replayed with it.
STORED_HEADERS = ("Content-Type", "Location", "Link", "Retry-After", "Allow")

_KEYS = table_of(IdempotencyKey)
_FIND = select(_KEYS).where(
    _KEYS.c.client_id == bindparam("client_id"), _KEYS.c.key == bindparam("key")
)
_INSERT = insert(_KEYS)


def fingerprint(method: str, path: str, principal: str, body: bytes) -> str:
    """SHA-256 of method, path, acting principal and the body (canonical JSON when it is JSON)."""
    try:
        canonical = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), principal.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))  # length-prefixed: no ambiguous joins
        digest.update(part)
    return digest.hexdigest()


def _key_from_request() -> str:
    key = request.headers.get(HEADER)
    if not key:
        raise Problem(
            400,
            f"Every POST needs an {HEADER} header: a unique value (a UUID) per intended effect.",
            title="Idempotency-Key required",
            type="idempotency-key-missing",
            code="idempotency_key_missing",
        )
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise Problem(
            400,
            f"The {HEADER} must be 1 to {MAX_KEY_LENGTH} printable characters.",
            title="Invalid Idempotency-Key",
            type="idempotency-key-invalid",
            code="idempotency_key_invalid",
        )
    return key


def _find(client_id: str, key: str) -> Row[Any] | None:
    """The key's row, read fresh (a plain row: it is only read, on every POST)."""
    return db.session.execute(_FIND, {"client_id": client_id, "key": key}).first()


def _expired(row: Row[Any]) -> bool:
    """An expired row names nothing any more (it waits for ``purge_expired_keys``)."""
    return row.created_at <= utcnow() - KEY_LIFETIME


def _answer_existing(existing: Row[Any], print_: str) -> Response:
    if existing.fingerprint != print_:
        raise Problem(
            422,
            "This Idempotency-Key was used for a different request; use a new key per request.",
            title="Idempotency key reused",
            type="idempotency-mismatch",
            code="idempotency_mismatch",
        )
    response = current_app.response_class(
        existing.response_body or "", status=existing.response_status
    )
    for name, value in (existing.response_headers or {}).items():
        response.headers[name] = value
    response.headers[REPLAYED_HEADER] = "true"
    return response


def _store(client_id: str, key: str, print_: str, response: Response, replaces: str | None) -> None:
    """Insert the key's row with the response in the open transaction (dropping an expired one).

    Core statements: the ORM's unit of work cost more than the SQL for this one row.
    """
    if replaces is not None:
        db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == replaces))
    now = utcnow()
    db.session.execute(
        _INSERT,
        {
            "id": new_id(),
            "client_id": client_id,
            "key": key,
            "fingerprint": print_,
            "method": request.method,
            "path": request.path[:500],
            "response_status": response.status_code,
            "response_body": response.get_data(as_text=True),
            "response_headers": {
                name: response.headers[name] for name in STORED_HEADERS if name in response.headers
            },
            "created_at": now,
            "completed_at": now,
        },
    )


def _run_view(view: Callable[..., Any], args: Any, kwargs: Any) -> Response:
    """The view's response; a refused request (a client error) becomes its problem response."""
    try:
        return make_response(view(*args, **kwargs))
    except Exception as exc:
        problem = problem_for(exc)
        if problem is None or problem.status >= 500:
            db.session.rollback()
            raise
        return problem_response(problem)


def _stored_answer(client_id: str, key: str, print_: str) -> Response | None:
    """The answer of the key's live row, if it has one (read after a rollback)."""
    existing = _find(client_id, key)
    if existing is None or _expired(existing):
        return None
    return _answer_existing(existing, print_)


def idempotent(view: F) -> F:
    """Make a POST view effectively-once per ``Idempotency-Key`` (place under ``require_oauth``)."""

    @wraps(view)
    def run(*args: Any, **kwargs: Any) -> Response:
        key = _key_from_request()
        client_id = str(current_token.client_id)
        principal = f"{client_id}/{current_token.member_id or ''}"
        print_ = fingerprint(request.method, request.path, principal, request.get_data())
        replaces: str | None = None  # an expired row of the key, deleted with our insert
        while True:
            try:
                response = _run_view(view, args, kwargs)
            except Exception:
                # Rolled back. A replay still gets its answer though its run failed now.
                answer = _stored_answer(client_id, key, print_)
                if answer is None:
                    raise
                return answer
            if response.status_code >= 500:
                db.session.rollback()
                return _stored_answer(client_id, key, print_) or response
            if response.status_code >= 400:
                db.session.rollback()  # a refused request changes nothing; its answer is kept
            try:
                _store(client_id, key, print_, response, replaces=replaces)
                db.session.commit()
                return response
            except IntegrityError:
                db.session.rollback()
                existing = _find(client_id, key)
                if existing is None or existing.id == replaces:
                    raise  # not the key's constraint: a real error, reported as such
                if not _expired(existing):
                    return _answer_existing(existing, print_)
                # An expired row names nothing: run again, replacing it (once per such row).
                replaces = existing.id
            except Exception:
                db.session.rollback()
                raise

    return run  # type: ignore[return-value]


@task
def purge_expired_keys(now: datetime | None = None) -> int:
    """Delete keys older than 24 hours and commit (a job the scheduler can run); returns count."""
    cutoff = (now or utcnow()) - KEY_LIFETIME
    result = db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff))
    db.session.commit()
    return int(cast(CursorResult[Any], result).rowcount or 0)

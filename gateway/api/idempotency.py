"""``Idempotency-Key`` on every API POST: one key, one effect, the first response replayed.

The key's row is inserted and committed before the view runs, so a concurrent request with the
same key finds it: while the first is running, 409 ``idempotency_in_progress`` with Retry-After;
once it is done, the same request gets the stored response again (``Idempotent-Replayed: true``)
and another request under the same key gets 422 ``idempotency_mismatch``.

The view's changes and the stored response commit together, in one transaction, so a posting is
never committed without its response (nor the reverse). Views under ``@idempotent`` do not
commit. Client errors (4xx) are stored and replayed like successes; a server error (5xx) rolls
back and releases the key, so the client may retry with it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Response, current_app, make_response, request
from sqlalchemy import CursorResult, delete, select
from sqlalchemy.exc import IntegrityError

from gateway.api.errors import problem_for
from gateway.api.models import IdempotencyKey
from gateway.auth.resource import current_token
from gateway.db import db, utcnow
from gateway.problems import Problem, problem_response

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_LIFETIME = timedelta(hours=24)
MAX_KEY_LENGTH = 255
# Headers that belong to the response itself and are replayed with it.
STORED_HEADERS = ("Content-Type", "Location", "Link", "Retry-After", "Allow")


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
            type="idempotency_key_missing",
            code="idempotency_key_missing",
        )
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise Problem(
            400,
            f"The {HEADER} must be 1 to {MAX_KEY_LENGTH} printable characters.",
            title="Invalid Idempotency-Key",
            type="idempotency_key_invalid",
            code="idempotency_key_invalid",
        )
    return key


def _find(client_id: str, key: str) -> IdempotencyKey | None:
    return db.session.scalar(
        select(IdempotencyKey)
        .where(IdempotencyKey.client_id == client_id, IdempotencyKey.key == key)
        .execution_options(populate_existing=True)
    )


def _claim(client_id: str, key: str, print_: str) -> IdempotencyKey | str:
    """Insert and commit the key row: its id when claimed, else the live row already there."""
    for _attempt in range(3):
        row = IdempotencyKey(
            client_id=client_id,
            key=key,
            fingerprint=print_,
            method=request.method,
            path=request.path[:500],
        )
        db.session.add(row)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
        else:
            return row.id
        existing = _find(client_id, key)
        if existing is None:
            continue  # released (a 5xx) or purged between our insert and our read
        if existing.created_at > utcnow() - KEY_LIFETIME:
            return existing
        # Expired but not purged yet: it names nothing any more.
        db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == existing.id))
        db.session.commit()
    raise Problem(
        409,
        "Another request with this Idempotency-Key is being processed; retry shortly.",
        title="Idempotency key in use",
        type="idempotency_in_progress",
        code="idempotency_in_progress",
        headers={"Retry-After": "1"},
    )


def _answer_existing(existing: IdempotencyKey, print_: str) -> Response:
    if existing.fingerprint != print_:
        raise Problem(
            422,
            "This Idempotency-Key was used for a different request; use a new key per request.",
            title="Idempotency key reused",
            type="idempotency_mismatch",
            code="idempotency_mismatch",
        )
    if existing.completed_at is None or existing.response_status is None:
        raise Problem(
            409,
            "The first request with this Idempotency-Key is still being processed; retry shortly.",
            title="Request in progress",
            type="idempotency_in_progress",
            code="idempotency_in_progress",
            headers={"Retry-After": "1"},
        )
    response = current_app.response_class(
        existing.response_body or "", status=existing.response_status
    )
    for name, value in (existing.response_headers or {}).items():
        response.headers[name] = value
    response.headers[REPLAYED_HEADER] = "true"
    return response


def _release(row_id: str) -> None:
    try:
        db.session.rollback()
        db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == row_id))
        db.session.commit()
    except Exception:  # releasing is best effort: the key expires anyway
        db.session.rollback()
        log.exception("could not release idempotency key %s", row_id)


def _complete(row_id: str, response: Response) -> None:
    row = db.session.get(IdempotencyKey, row_id)
    if row is None:  # purged while we ran (a run longer than the lifetime): store nothing
        return
    row.response_status = response.status_code
    row.response_body = response.get_data(as_text=True)
    row.response_headers = {
        name: response.headers[name] for name in STORED_HEADERS if name in response.headers
    }
    row.completed_at = utcnow()


def idempotent(view: F) -> F:
    """Make a POST view effectively-once per ``Idempotency-Key`` (place under ``require_oauth``)."""

    @wraps(view)
    def run(*args: Any, **kwargs: Any) -> Response:
        key = _key_from_request()
        client_id = str(current_token.client_id)
        principal = f"{client_id}/{current_token.member_id or ''}"
        print_ = fingerprint(request.method, request.path, principal, request.get_data())
        row_id = _claim(client_id, key, print_)
        if isinstance(row_id, IdempotencyKey):
            return _answer_existing(row_id, print_)
        try:
            response = make_response(view(*args, **kwargs))
        except Exception as exc:
            problem = problem_for(exc)
            if problem is None or problem.status >= 500:
                _release(row_id)
                raise
            db.session.rollback()  # a refused request changes nothing
            response = problem_response(problem)
        if response.status_code >= 500:
            _release(row_id)
            return response
        if response.status_code >= 400:
            db.session.rollback()
        try:
            _complete(row_id, response)
            db.session.commit()
        except Exception:
            _release(row_id)
            raise
        return response

    return run  # type: ignore[return-value]


def purge_expired_keys(now: datetime | None = None) -> int:
    """Delete keys older than 24 hours and commit (a job the scheduler can run); returns count."""
    cutoff = (now or utcnow()) - KEY_LIFETIME
    result = db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff))
    db.session.commit()
    return int(cast(CursorResult[Any], result).rowcount or 0)

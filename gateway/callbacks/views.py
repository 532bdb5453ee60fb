"""POST /callbacks/<platform>: verify, store raw, acknowledge, then process in a job.

The hot path is one version check, the insert and its commit, and one Redis pipeline: the
platform and its decrypted secrets come from a per-process cache (``callback_platform``), and
the event is handed to the inbox drain (``gateway.callbacks.drain``) rather than to a job of its
own.
"""

from __future__ import annotations

import json
import logging

from flask import Blueprint, Response, current_app, jsonify, request
from prometheus_client import Counter
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from connectors.errors import ConnectorError, PermanentError
from gateway.callbacks.decoding import OurFault, decode_event
from gateway.callbacks.drain import hand_over
from gateway.callbacks.models import HANDLED_TYPES, InboxEvent
from gateway.callbacks.signature import SignatureError, verify
from gateway.db import db
from gateway.federation.models import Platform
from gateway.federation.platforms import CallbackPlatform, callback_platform
from gateway.members.models import new_id
from gateway.problems import Problem

log = logging.getLogger(__name__)

bp = Blueprint("callbacks", __name__)

_INSERT = insert(InboxEvent.__table__)

REFUSED = Counter(
    "gateway_callbacks_refused_total",
    "Callbacks refused at the door, by platform and reason (signature, invalid, too_large).",
    ["platform", "reason"],
)
CONFLICTING_REPLAYS = Counter(
    "gateway_callbacks_conflicting_replays_total",
    "Callbacks repeating a known webhook id with a different body (kept: the first), by platform.",
    ["platform"],
)


def _retry_later(detail: str) -> Problem:
    # A 5xx: the partner keeps the event and sends it again (a 4xx would make it give up).
    return Problem(503, detail, type="retry-later", headers={"Retry-After": "30"})


def _body(platform: str, limit: int) -> bytes:
    too_large = Problem(413, f"Callback bodies are limited to {limit} bytes.", type="too-large")
    if request.content_length is not None and request.content_length > limit:
        REFUSED.labels(platform, "too_large").inc()
        raise too_large
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        REFUSED.labels(platform, "too_large").inc()
        raise too_large
    return body


def _known_platform(name: str) -> CallbackPlatform:
    try:
        known = callback_platform(name)
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("callback for %s not read: the database did not answer", name)
        raise _retry_later("The gateway cannot store events now; send it again later.") from None
    if known is None:
        raise Problem(404, "No enabled platform has that name.", type="unknown-platform")
    return known


def _same_body(stored: str, body: bytes) -> bool:
    text = body.decode("utf-8", errors="replace")
    if stored == text:
        return True
    try:  # the same event serialised again (keys in another order) is the same event
        return bool(json.loads(stored) == json.loads(text))
    except ValueError:
        return False


def _replayed(platform: Platform, webhook_id: str, body: bytes) -> tuple[Response, int]:
    """A webhook id we hold already: acknowledged, the stored event unchanged."""
    stored = db.session.execute(
        select(InboxEvent.id, InboxEvent.body).where(
            InboxEvent.platform_id == platform.id, InboxEvent.webhook_id == webhook_id
        )
    ).first()
    if stored is None:
        raise _retry_later("The event could not be stored; send it again later.")
    if not _same_body(stored.body, body):
        # Ids and sizes only: a body may carry personal data, and never goes to the logs.
        CONFLICTING_REPLAYS.labels(platform.name).inc()
        log.warning(
            "platform %s sent webhook id %s again with a different body (%d bytes); "
            "the first body (inbox %s) is kept",
            platform.name,
            webhook_id,
            len(body),
            stored.id,
        )
    return jsonify(status="duplicate"), 200


@bp.post("/callbacks/<name>")
def receive(name: str) -> tuple[Response, int]:
    """Accept one signed event from a platform.

    Party: only the platform itself, proven by a signature made with one of its active webhook
    secrets; anyone else is refused (401) before the body is read as an event.
    """
    known = _known_platform(name)
    platform = known.platform
    body = _body(platform.name, current_app.config["CALLBACK_MAX_BYTES"])
    headers = {k.lower(): v for k, v in request.headers.items() if k.lower().startswith("webhook-")}
    try:
        webhook_id = verify(headers, body, known.secrets)
    except SignatureError as exc:
        REFUSED.labels(platform.name, "signature").inc()
        raise Problem(exc.status, str(exc), type="invalid-signature") from None
    try:
        event = decode_event(platform, headers, body)
    except PermanentError as exc:
        REFUSED.labels(platform.name, "invalid").inc()
        raise Problem(400, f"The event cannot be read: {exc}", type="invalid-event") from None
    except OurFault as exc:
        log.error("callback for %s not read, a fault of ours: %s", platform.name, exc)
        raise _retry_later("The gateway cannot read events now; send it again later.") from None
    except ConnectorError:
        raise _retry_later("The event cannot be read now; send it again later.") from None
    inbox_id = new_id()
    # The contract may grow event types the core does not handle: acknowledged, kept, ignored.
    handled = event.type in HANDLED_TYPES
    # A Core insert: the ORM's unit of work cost more than the statement for this one row. The
    # columns' defaults (received_at, state, attempts) still apply.
    values = {
        "id": inbox_id,
        "platform_id": platform.id,
        "webhook_id": webhook_id,
        "event_type": event.type[:64],
        "headers": headers,
        "body": body.decode("utf-8", errors="replace"),
    }
    if not handled:
        values["state"] = "ignored"
    try:
        db.session.execute(_INSERT, values)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # the same webhook id again: acknowledged, nothing changes
        try:
            return _replayed(platform, webhook_id, body)
        except SQLAlchemyError:
            db.session.rollback()
            raise _retry_later("The event could not be stored; send it again later.") from None
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("callback for %s not stored: the database did not answer", platform.name)
        raise _retry_later("The event could not be stored; send it again later.") from None
    if not handled:
        return jsonify(status="ignored", id=inbox_id), 200
    try:
        hand_over([inbox_id])
    except Exception:  # noqa: BLE001 - stored; the inbox sweeper hands it over later
        log.warning("callback stored but not queued; the sweeper will pick it up")
    return jsonify(status="accepted", id=inbox_id), 202

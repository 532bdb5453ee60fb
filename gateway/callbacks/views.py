"""POST /callbacks/<platform>: verify, store raw, acknowledge, then process in a job.

The hot path is one version check, the insert and its commit, and one Redis pipeline: the
platform and its decrypted secrets come from a per-process cache (``callback_platform``), and
the event is handed to the inbox drain (``gateway.callbacks.drain``) rather than to a job of its
own.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from connectors.errors import ConnectorError, PermanentError
from gateway.callbacks.drain import hand_over
from gateway.callbacks.models import InboxEvent
from gateway.callbacks.signature import SignatureError, verify
from gateway.db import db
from gateway.federation.platforms import callback_platform
from gateway.members.models import new_id
from gateway.problems import Problem
from gateway.sync.remote import connector_for

log = logging.getLogger(__name__)

bp = Blueprint("callbacks", __name__)

_INSERT = insert(InboxEvent.__table__)


def _body(limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise Problem(413, f"Callback bodies are limited to {limit} bytes.", type="too-large")
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise Problem(413, f"Callback bodies are limited to {limit} bytes.", type="too-large")
    return body


@bp.post("/callbacks/<name>")
def receive(name: str) -> tuple[Response, int]:
    """Accept one signed event from a platform."""
    known = callback_platform(name)
    if known is None:
        raise Problem(404, "No enabled platform has that name.", type="unknown-platform")
    platform = known.platform
    body = _body(current_app.config["CALLBACK_MAX_BYTES"])
    headers = {k.lower(): v for k, v in request.headers.items() if k.lower().startswith("webhook-")}
    try:
        webhook_id = verify(headers, body, known.secrets)
    except SignatureError as exc:
        raise Problem(exc.status, str(exc), type="invalid-signature") from None
    try:
        event = connector_for(platform).parse_callback(headers, body)
    except PermanentError as exc:
        raise Problem(400, f"The event cannot be read: {exc}", type="invalid-event") from None
    except ConnectorError:
        raise Problem(
            503, "The event cannot be read now; send it again later.", headers={"Retry-After": "30"}
        ) from None
    inbox_id = new_id()
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
    try:
        db.session.execute(_INSERT, values)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # the same webhook id again: acknowledged, nothing changes
        return jsonify(status="duplicate"), 200
    try:
        hand_over([inbox_id])
    except Exception:  # noqa: BLE001 - stored; the inbox sweeper hands it over later
        log.warning("callback stored but not queued; the sweeper will pick it up")
    return jsonify(status="accepted", id=inbox_id), 202

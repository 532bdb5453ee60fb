"""POST /callbacks/<platform>: verify, store raw, acknowledge, then process in a job."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.exc import IntegrityError

from connectors.errors import ConnectorError, PermanentError
from gateway.callbacks.models import InboxEvent
from gateway.callbacks.processing import enqueue
from gateway.callbacks.signature import SignatureError, verify
from gateway.db import db
from gateway.federation.platforms import active_secrets, get_platform
from gateway.problems import Problem
from gateway.sync.remote import connector_for

log = logging.getLogger(__name__)

bp = Blueprint("callbacks", __name__)


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
    platform = get_platform(name)
    if platform is None or not platform.enabled:
        raise Problem(404, "No enabled platform has that name.", type="unknown-platform")
    body = _body(current_app.config.get("CALLBACK_MAX_BYTES", 64 * 1024))
    headers = {k.lower(): v for k, v in request.headers.items() if k.lower().startswith("webhook-")}
    try:
        webhook_id = verify(headers, body, [s.secret for s in active_secrets(platform)])
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
    row = InboxEvent(
        platform_id=platform.id,
        webhook_id=webhook_id,
        event_type=event.type[:64],
        headers=headers,
        body=body.decode("utf-8", errors="replace"),
    )
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # the same webhook id again: acknowledged, nothing changes
        return jsonify(status="duplicate"), 200
    try:
        enqueue(row.id)
    except Exception:  # noqa: BLE001 - stored; the inbox sweeper enqueues it later
        log.warning("callback stored but not queued; the sweeper will pick it up")
    return jsonify(status="accepted", id=row.id), 202

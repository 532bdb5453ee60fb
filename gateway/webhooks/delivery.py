"""Delivering an event row: a signed POST to the subscription's URL, classified for the engine.

``prepare_event`` (the ``event`` kind's handler, run by the drain with the database) reads the
secrets that sign now and makes the body; ``deliver`` (run in any thread, no database) sends it.
Standard Webhooks: ``webhook-id`` is the event id (the same on every retry, so the receiver
can deduplicate), ``webhook-timestamp`` the time of this attempt (receivers refuse stale ones),
``webhook-signature`` one ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` per secret that
signs now (two during a rotation's grace period).

How answers map onto the connector errors, and so onto the engine's verdicts:

| answer | error | the engine |
|---|---|---|
| 2xx | none | delivered |
| 429 | ``RateLimitedError`` (Retry-After) | waits, no attempt spent |
| 408, 5xx, connection failure, timeout | ``RetryableError`` | backoff, then dead letter |
| 3xx (never followed) | ``PermanentError`` ``unexpected_redirect`` | dead letter |
| other 4xx | ``PermanentError`` ``http_<status>`` | dead letter, with a snippet of the body |
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import Any

import requests
from flask import current_app

from connectors.errors import ConnectorError, PermanentError, RateLimitedError, RetryableError
from connectors.http import HttpClient, error_for_exception, parse_retry_after
from gateway.callbacks.signature import sign
from gateway.federation.models import Platform
from gateway.sync.handlers import Call
from gateway.sync.models import OutboxItem
from gateway.webhooks.subscriptions import signing_secrets

SNIPPET_CHARACTERS = 200
USER_AGENT = "community-gateway-webhooks/1"

_clients: dict[str, HttpClient] = {}
_lock = threading.Lock()


def _client(url: str) -> HttpClient:
    """A pooled client per URL (no urllib3 retries, no redirects: ``connectors.http``)."""
    with _lock:
        client = _clients.get(url)
        if client is None:
            client = _clients[url] = HttpClient(url)
        return client


def body_of(event: dict[str, Any]) -> bytes:
    """The bytes an event is sent as (the signature covers exactly these)."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


def signature_header(secrets: Sequence[str], webhook_id: str, timestamp: int, body: bytes) -> str:
    """``webhook-signature``: one ``v1,`` signature per secret, space-separated."""
    return " ".join(sign(secret, webhook_id, timestamp, body) for secret in secrets)


def _snippet(response: requests.Response) -> str:
    text = response.text[:SNIPPET_CHARACTERS].replace("\n", " ").strip()
    return f": {text}" if text else ""


def error_for(response: requests.Response) -> ConnectorError | None:
    """The typed error for the receiver's answer, or None when it took the event."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    message = f"the receiver answered {status}{_snippet(response)}"
    if status == 429:
        return RateLimitedError(message, retry_after=retry_after, status=status)
    if status == 408 or status >= 500:
        return RetryableError(message, retry_after=retry_after, status=status)
    if 300 <= status < 400:
        return PermanentError(message, "unexpected_redirect", status=status)
    return PermanentError(message, f"http_{status}", status=status)


def deliver(url: str, webhook_id: str, body: bytes, secrets: Sequence[str], timeout: float) -> int:
    """POST the event once; returns the status, or raises a typed ``ConnectorError``."""
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, webhook_id, timestamp, body),
    }
    client = _client(url)
    try:
        response = client.session.post(
            url,
            data=body,
            headers=headers,
            timeout=(min(timeout, 5.0), timeout),
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise error_for_exception("POST", url, exc) from exc
    try:
        error = error_for(response)
    finally:
        response.close()
    if error is not None:
        raise error
    return response.status_code


def prepare_event(item: OutboxItem, platform: Platform) -> Call:
    """The call that delivers one event row to its subscription."""
    secrets = [row.secret for row in signing_secrets(platform.id)]
    if not secrets:
        raise PermanentError("the subscription has no secret that signs now", "no_secret")
    event = item.payload or {}
    webhook_id = str(event.get("id") or item.id)
    body = body_of(event)
    url = platform.base_url
    timeout = float(current_app.config.get("WEBHOOK_TIMEOUT_SECONDS", 10.0))
    return Call(
        send=lambda: deliver(url, webhook_id, body, secrets, timeout),
        apply=lambda status: {"status": status, "webhook_id": webhook_id},
    )

"""The partner API (``/v1``): thin views over ``timebank``, writes through ``idempotent``."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, jsonify, request

from gateway_sandbox import timebank
from gateway_sandbox.faults import Faults, load_faults
from gateway_sandbox.idempotency import idempotent
from gateway_sandbox.oauth import require_token
from gateway_sandbox.problems import SandboxProblem
from gateway_sandbox.webhooks import new_secret, secret_bytes

__all__ = ["bp"]

bp = Blueprint("sandbox_api", __name__, url_prefix="/v1")

EVENT_TYPES = ("transfer.completed", "transfer.reversed", "member.updated", "member.erased")


def _sandbox() -> Any:
    return current_app.extensions["sandbox"]


def _json_body() -> Any:
    raw = request.get_data()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise SandboxProblem(422, "validation_error", "the body is not JSON") from None


def _faults(connection: Any) -> Faults:
    return load_faults(connection, current_app.config["SANDBOX_FAULTS"])


def _limit() -> int:
    raw = request.args.get("limit", "100")
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= 500:
        raise SandboxProblem(
            422, "validation_error", "limit is 1 to 500", errors={"limit": ["1 to 500"]}
        )
    return limit


@bp.get("/me")
def me() -> Response:
    """The member who authorized the token."""
    caller = require_token(member=True)
    with _sandbox().store.reading() as connection:
        return jsonify(timebank.get_member(connection, caller.client_id, caller.member_id or ""))


@bp.post("/members")
def create_member() -> Response:
    """Register a member on behalf of the partner."""
    caller = require_token("members:write")
    limit = int(current_app.config["SANDBOX_CREDIT_LIMIT_MINUTES"])
    payload = _json_body()
    return idempotent(
        caller.client_id,
        lambda db: (201, timebank.register_member(db, caller.client_id, payload, limit)),
    )


@bp.get("/members")
def list_members() -> Response:
    """The partner's members, one page."""
    caller = require_token("members:write")
    with _sandbox().store.reading() as connection:
        page = timebank.list_members(
            connection,
            caller.client_id,
            request.args.get("external_id"),
            request.args.get("cursor"),
            _limit(),
        )
    return jsonify(page)


@bp.get("/members/<member_id>")
def get_member(member_id: str) -> Response:
    """One member."""
    caller = require_token("members:write")
    with _sandbox().store.reading() as connection:
        return jsonify(timebank.get_member(connection, caller.client_id, member_id))


@bp.patch("/members/<member_id>")
def update_member(member_id: str) -> Response:
    """Change a member's profile."""
    caller = require_token("members:write")
    payload = _json_body()
    return idempotent(
        caller.client_id,
        lambda db: (
            200,
            timebank.update_member(db, caller.client_id, member_id, payload, _faults(db)),
        ),
    )


@bp.delete("/members/<member_id>")
def erase_member(member_id: str) -> Response:
    """Erase a member's personal data."""
    caller = require_token("members:write")

    def erase(db: Any) -> tuple[int, None]:
        timebank.erase_member(db, caller.client_id, member_id, _faults(db))
        return 204, None

    return idempotent(caller.client_id, erase)


@bp.get("/wallets/<wallet_id>")
def wallet(wallet_id: str) -> Response:
    """A wallet and its balance."""
    caller = require_token("transfers:read")
    with _sandbox().store.reading() as connection:
        return jsonify(timebank.wallet_doc(connection, caller.client_id, wallet_id))


@bp.post("/transfers")
def create_transfer() -> Response:
    """Move minutes between two wallets."""
    caller = require_token("transfers:write")
    payload = _json_body()
    return idempotent(
        caller.client_id,
        lambda db: (201, timebank.create_transfer(db, caller.client_id, payload, _faults(db))),
    )


@bp.get("/transfers")
def list_transfers() -> Response:
    """Transfers touching the partner's wallets, oldest first."""
    caller = require_token("transfers:read")
    with _sandbox().store.reading() as connection:
        page = timebank.list_transfers(
            connection,
            caller.client_id,
            request.args.get("wallet_id"),
            request.args.get("external_reference"),
            request.args.get("cursor"),
            _limit(),
        )
    return jsonify(page)


@bp.post("/transfers/<transfer_id>/reversal")
def reverse_transfer(transfer_id: str) -> Response:
    """Reverse a completed transfer."""
    caller = require_token("transfers:write")
    return idempotent(
        caller.client_id,
        lambda db: (
            201,
            timebank.reverse_transfer(db, caller.client_id, transfer_id, _faults(db)),
        ),
    )


@bp.put("/webhook-endpoints")
def put_webhook_endpoint() -> Response:
    """Set the partner's callback URL; the answer carries the signing secret."""
    caller = require_token()
    payload = _json_body()
    if not isinstance(payload, dict):
        raise SandboxProblem(422, "validation_error", "a JSON object with url is required")
    url, events = payload.get("url"), payload.get("events", [])
    errors: dict[str, list[str]] = {}
    target = urlsplit(url) if isinstance(url, str) else None
    allowed = current_app.config["SANDBOX_WEBHOOK_HOSTS"]
    if (
        target is None
        or target.scheme not in ("http", "https")
        or (target.hostname or "") not in allowed
    ):
        errors["url"] = [f"an http(s) URL on one of {', '.join(allowed)}"]
    if not isinstance(events, list) or any(e not in EVENT_TYPES for e in events):
        errors["events"] = [f"a list of {', '.join(EVENT_TYPES)}"]
    secret = payload.get("secret")
    if secret is not None:
        try:
            secret_bytes(secret)
        except (TypeError, ValueError):
            errors["secret"] = ["whsec_ and at least 16 bytes in base64"]
    if errors:
        raise SandboxProblem(422, "validation_error", "the endpoint is not valid", errors=errors)
    with _sandbox().store.transaction() as connection:
        current = connection.execute(
            "SELECT secret FROM endpoints WHERE client_id = ?", (caller.client_id,)
        ).fetchone()
        # The secret stays across updates unless a new one is given: rotating it is explicit.
        secret = secret or (current["secret"] if current else new_secret())
        connection.execute(
            "INSERT INTO endpoints (client_id, url, secret, events) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (client_id) DO UPDATE SET url = excluded.url, secret = excluded.secret, "
            "events = excluded.events",
            (caller.client_id, url, secret, json.dumps(events)),
        )
    return jsonify({"url": url, "secret": secret, "events": events})

"""The sandbox's own controls (``/_sandbox``): faults, webhook schedule, reset, seed, tokens.

Unauthenticated on purpose, like the rest of this development stand-in: keep it on loopback.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from gateway_sandbox import timebank
from gateway_sandbox.faults import Faults, injected_faults, load_faults, save_faults
from gateway_sandbox.problems import SandboxProblem
from gateway_sandbox.webhooks import retry_schedule

__all__ = ["bp", "reset", "seed"]

bp = Blueprint("sandbox_control", __name__, url_prefix="/_sandbox")

SEED_MEMBERS = (
    ("giulia.rossi@example.org", "Giulia Rossi"),
    ("marco.bianchi@example.org", "Marco Bianchi"),
    ("aisha.diallo@example.org", "Aisha Diallo"),
)
SEED_TRANSFERS = (
    (0, 1, 60, "Accompagnamento dal medico", "seed-1"),
    (1, 2, 90, "Lezione di italiano", "seed-2"),
    (2, 0, 30, "Riparazione bicicletta", "seed-3"),
)


def _sandbox() -> Any:
    return current_app.extensions["sandbox"]


@bp.get("/health")
def health() -> Response:
    """Liveness, and where the partner's clearing wallet is."""
    return jsonify(
        {"status": "ok", "clearing_wallet_id": current_app.config["SANDBOX_CLEARING_WALLET_ID"]}
    )


@bp.get("/faults")
def get_faults() -> Response:
    """The faults in force."""
    with _sandbox().store.reading() as connection:
        return jsonify(load_faults(connection, current_app.config["SANDBOX_FAULTS"]).as_dict())


@bp.post("/faults")
def set_faults() -> Response:
    """Change some fault settings (the others stay); ``{"clear": true}`` switches all off."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise SandboxProblem(422, "validation_error", "a JSON object of fault settings")
    with _sandbox().store.transaction() as connection:
        base = (
            Faults()
            if payload.pop("clear", False)
            else load_faults(connection, current_app.config["SANDBOX_FAULTS"])
        )
        try:
            faults = Faults.from_mapping(payload, base=base)
        except ValueError as exc:
            raise SandboxProblem(422, "validation_error", str(exc)) from None
        save_faults(connection, faults)
    return jsonify(faults.as_dict())


@bp.get("/faults/injected")
def get_injected_faults() -> Response:
    """How many faults of each kind were injected since the sandbox was set up or reset."""
    with _sandbox().store.reading() as connection:
        return jsonify(injected_faults(connection))


@bp.get("/webhooks")
def webhook_schedule() -> Response:
    """How the partner retries a webhook, and after how long it gives the event up."""
    config = current_app.config
    waits = retry_schedule(
        int(config["SANDBOX_WEBHOOK_MAX_ATTEMPTS"]),
        float(config["SANDBOX_WEBHOOK_RETRY_BASE_SECONDS"]),
        float(config["SANDBOX_WEBHOOK_MAX_BACKOFF_SECONDS"]),
    )
    return jsonify(
        {
            "max_attempts": int(config["SANDBOX_WEBHOOK_MAX_ATTEMPTS"]),
            "retry_waits_seconds": waits,
            "gives_up_after_seconds": sum(waits),
        }
    )


@bp.post("/tokens/revoke")
def revoke_tokens() -> Response:
    """Revoke every token, as a platform rotating its keys would."""
    with _sandbox().store.transaction() as connection:
        count = connection.execute("UPDATE tokens SET revoked = 1 WHERE revoked = 0").rowcount
    return jsonify({"revoked": count})


@bp.get("/deliveries")
def deliveries() -> Response:
    """Webhook deliveries and their state, newest first (for people and tests)."""
    with _sandbox().store.reading() as connection:
        rows = connection.execute(
            "SELECT d.id, d.event_id, e.type, d.state, d.attempts, d.last_status, d.last_error "
            "FROM deliveries d JOIN events e ON e.id = d.event_id ORDER BY d.id DESC LIMIT 200"
        ).fetchall()
    return jsonify({"data": [dict(row) for row in rows]})


@bp.post("/reset")
def reset_view() -> Response:
    """Forget everything: members, transfers, tokens, endpoints, deliveries; faults as started."""
    reset(current_app)
    return jsonify({"status": "reset"})


@bp.post("/seed")
def seed_view() -> Response:
    """Create demo members (natives, not the partner's) and some activity between them."""
    return jsonify(seed(current_app))


def reset(app: Any) -> None:
    """Empty the sandbox and set it up again from its settings."""
    sandbox = app.extensions["sandbox"]
    with sandbox.store.transaction() as connection:
        sandbox.store.wipe(connection)
        sandbox.setup(connection)


def seed(app: Any) -> dict[str, Any]:
    """Add the demo members and transfers that are not there yet; returns what exists."""
    sandbox = app.extensions["sandbox"]
    limit = int(app.config["SANDBOX_CREDIT_LIMIT_MINUTES"])
    with sandbox.store.transaction() as connection:
        members = []
        for email, name in SEED_MEMBERS:
            row = connection.execute(
                "SELECT * FROM members WHERE email_key = ?", (email.casefold(),)
            ).fetchone()
            members.append(row or timebank.create_native_member(connection, email, name, limit))
        created = 0
        for payer, payee, minutes, description, reference in SEED_TRANSFERS:
            exists = connection.execute(
                "SELECT 1 FROM transfers WHERE client_id IS NULL AND external_reference = ?",
                (reference,),
            ).fetchone()
            if exists:
                continue
            payer_wallet, payee_wallet = (
                connection.execute(
                    "SELECT * FROM wallets WHERE id = ?", (members[i]["wallet_id"],)
                ).fetchone()
                for i in (payer, payee)
            )
            timebank.record_transfer(
                connection, None, payer_wallet, payee_wallet, minutes, description, reference
            )
            created += 1
    return {
        "members": [
            {"id": m["id"], "email": m["email"], "wallet_id": m["wallet_id"]} for m in members
        ],
        "transfers_created": created,
    }

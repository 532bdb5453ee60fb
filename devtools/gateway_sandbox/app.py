"""The sandbox timebank's app factory: a separate small Flask app serving the partner contract."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask

from gateway import security_headers
from gateway_sandbox import problems
from gateway_sandbox.faults import FaultMiddleware, save_faults
from gateway_sandbox.oauth import hash_secret
from gateway_sandbox.settings import DEFAULT_CLIENT_SECRET, load_sandbox_settings
from gateway_sandbox.store import Store
from gateway_sandbox.timebank import now_iso
from gateway_sandbox.webhooks import Dispatcher

__all__ = ["CLEARING_CREDIT_LIMIT", "Sandbox", "create_sandbox_app"]

log = logging.getLogger(__name__)

# The partner's clearing wallet settles hours for members who have no wallet of their own here.
CLEARING_CREDIT_LIMIT = 10**9


@dataclass
class Sandbox:
    """What the sandbox's views share: its store, its webhook dispatcher, its settings."""

    store: Store
    dispatcher: Dispatcher
    settings: dict[str, Any] = field(repr=False)

    def setup(self, connection: sqlite3.Connection) -> None:
        """Register the configured client, its clearing wallet, and the configured faults."""
        client_id = self.settings["SANDBOX_CLIENT_ID"]
        connection.execute(
            "INSERT INTO clients (id, secret_hash, name) VALUES (?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET secret_hash = excluded.secret_hash",
            (client_id, hash_secret(self.settings["SANDBOX_CLIENT_SECRET"]), "Community gateway"),
        )
        connection.execute(
            "INSERT OR IGNORE INTO wallets (id, member_id, client_id, balance, credit_limit, "
            "updated_at) VALUES (?, ?, ?, 0, ?, ?)",
            (
                self.settings["SANDBOX_CLEARING_WALLET_ID"],
                f"partner:{client_id}",
                client_id,
                CLEARING_CREDIT_LIMIT,
                now_iso(),
            ),
        )
        save_faults(connection, self.settings["SANDBOX_FAULTS"])


def create_sandbox_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the sandbox: settings from the environment, then ``config`` on top.

    Its state lives in ``SANDBOX_DATA_DIR/sandbox.db``. The webhook dispatcher is created but not
    started: ``SandboxServer`` (or ``app.extensions["sandbox"].dispatcher.start()``) starts it.
    """
    app = Flask(__name__)
    settings = load_sandbox_settings(overrides=config)
    app.config.update(settings)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    store = Store(Path(settings["SANDBOX_DATA_DIR"]) / "sandbox.db")
    store.initialize()
    sandbox = Sandbox(store, Dispatcher(store, settings), settings)
    with store.transaction() as connection:
        sandbox.setup(connection)
    app.extensions["sandbox"] = sandbox
    if settings["SANDBOX_CLIENT_SECRET"] == DEFAULT_CLIENT_SECRET:
        log.warning("sandbox timebank: using the public default client secret (development only)")

    problems.init_app(app)
    security_headers.init_basic_app(app)
    from gateway_sandbox import api, control, oauth

    app.register_blueprint(oauth.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(control.bp)
    app.wsgi_app = FaultMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, store.borrowed, settings["SANDBOX_FAULTS"]
    )
    return app

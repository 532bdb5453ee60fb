"""The community gateway: federates the Milano Sei l'Altro website with external timebanks."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from gateway.config import load_settings

__all__ = ["create_app"]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the gateway app: settings from the environment, then ``config`` on top."""
    app = Flask(__name__)
    app.config.update(load_settings(overrides=config))
    Path(app.config["GATEWAY_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    from gateway import nul_guard, observability, problems, proxy, redis_client, security_headers
    from gateway.db import Database

    proxy.init_app(app)
    Database().init_app(app)
    redis_client.init_app(app)
    problems.init_app(app)
    security_headers.init_app(app)
    nul_guard.init_app(app)
    observability.init_app(app)

    from gateway import csrf, i18n

    i18n.init_app(app)
    csrf.init_app(app)

    from gateway.health import bp as health_bp

    app.register_blueprint(health_bp)

    from gateway import api

    api.init_app(app)

    from gateway.auth import server as oauth_server
    from gateway.auth.authorize import bp as oidc_pages_bp
    from gateway.auth.endpoints import bp as oidc_bp

    oauth_server.init_app(app)
    app.register_blueprint(oidc_bp)
    app.register_blueprint(oidc_pages_bp)
    app.extensions["page_blueprints"].add(oidc_pages_bp.name)

    from gateway.members import apps, data, hours, timebanks, views  # noqa: F401 - views register
    from gateway.members.blueprint import bp as members_bp

    app.register_blueprint(members_bp)
    app.extensions["page_blueprints"].add(members_bp.name)

    from gateway.admin.api import bp as admin_api_bp
    from gateway.admin.views import bp as admin_pages_bp

    app.register_blueprint(admin_api_bp)
    app.register_blueprint(admin_pages_bp)
    app.extensions["page_blueprints"].add(admin_pages_bp.name)

    from gateway.callbacks.views import bp as callbacks_bp

    app.register_blueprint(callbacks_bp)

    from gateway.sync import subscribers

    subscribers.connect()

    from gateway.webhooks import events as webhook_events

    webhook_events.connect()

    from gateway.cli import register_flask_commands

    register_flask_commands(app)
    return app

"""The API of the local website: ``/api/v1``, bearer tokens, problem+json errors."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the ``api`` blueprint, ``/openapi.json`` and the ``/docs`` page."""
    # The view modules add their routes to the blueprint when imported.
    from gateway.api import accounts, members, organizations, transactions  # noqa: F401
    from gateway.api.blueprint import bp
    from gateway.api.openapi import docs_bp

    app.register_blueprint(bp)
    app.register_blueprint(docs_bp)

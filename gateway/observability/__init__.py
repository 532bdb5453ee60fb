"""Metrics for Prometheus, structured logs, and the request id that ties them together."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Install logging, request ids and metrics on ``app``."""
    from gateway.observability import logs, metrics

    logs.init_app(app)
    metrics.init_app(app)

"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from gateway.db import db
from gateway.problems import Problem
from gateway.redis_client import get_redis

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is alive; checks nothing else."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Response:
    """The database and Redis both answer; 503 names the part that does not."""
    failing = {}
    try:
        db.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means not ready, and is reported
        failing["database"] = type(exc).__name__
    try:
        get_redis().ping()
    except Exception as exc:  # noqa: BLE001 - as above
        failing["redis"] = type(exc).__name__
    if failing:
        current_app.logger.warning("not ready: %s", failing)
        raise Problem(
            503,
            f"Not ready: {', '.join(sorted(failing))} not answering.",
            title="Service Unavailable",
            type="not-ready",
            failing=failing,
            headers={"Retry-After": "5"},
        )
    return jsonify(status="ready", database="ok", redis="ok")

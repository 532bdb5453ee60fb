"""The app benchmarks serve: the gateway plus a bare endpoint, the in-process baseline."""

from __future__ import annotations

from flask import Flask, jsonify

from gateway import create_app
from gateway.web_server import freeze_loaded_objects


def bench_app() -> Flask:
    """The gateway with ``/bench/bare``: a Flask endpoint doing nothing but answering JSON."""
    app = create_app()

    @app.route("/bench/bare", methods=["GET", "POST"])
    def bare():
        return jsonify(ok=True)

    freeze_loaded_objects()  # as `gateway web` and deploy/gunicorn.conf.py do once it is loaded
    return app

"""The app benchmarks serve: the gateway plus a bare endpoint, the in-process baseline."""

from __future__ import annotations

from flask import Flask, jsonify

from gateway import create_app


def bench_app() -> Flask:
    """The gateway with ``/bench/bare``: a Flask endpoint doing nothing but answering JSON."""
    app = create_app()

    @app.route("/bench/bare", methods=["GET", "POST"])
    def bare():
        return jsonify(ok=True)

    return app

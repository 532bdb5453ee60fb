"""Serving a Flask app with gunicorn from our own commands (`gateway web`, `gateway sandbox`)."""

from __future__ import annotations

import gc
import os
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication


class _Gunicorn(BaseApplication):
    """gunicorn serving an app object we already built, with settings given as a dict."""

    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.application


def _child_exit(_server: Any, worker: Any) -> None:
    # A gone worker's metric files are folded into the totals (multiprocess mode).
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def freeze_loaded_objects() -> None:
    """Exempt every object alive once the app is loaded from garbage collection.

    Modules, the app, the ORM's mappers and the compiled statements live as long as the process,
    yet each full collection walked them all again: about 3% of a transaction POST's CPU. Frozen
    before gunicorn forks, they also stay shared with the master instead of being copied into
    every worker when the collector touches them. (Called where the app is loaded, never by
    ``create_app``: tests build many apps that must be collectable.)
    """
    gc.collect()
    gc.freeze()


def run_gunicorn(app: Flask, options: dict[str, Any]) -> None:
    """Serve ``app`` with gunicorn and these settings until it is stopped."""
    _Gunicorn(app, options).run()


def serve(app: Flask, host: str, port: int) -> None:
    """Run gunicorn with ``WEB_CONCURRENCY`` worker processes."""
    # The master must hold no pooled connections when it forks the workers.
    app.extensions["db"].dispose()
    freeze_loaded_objects()
    run_gunicorn(
        app,
        {
            "bind": f"{host}:{port}",
            "workers": app.config["WEB_CONCURRENCY"],
            "worker_class": "gthread",
            "threads": 4,
            # One listening socket per worker, balanced by the kernel (see deploy/gunicorn.conf.py).
            "reuse_port": True,
            "accesslog": "-",
            # No query strings in access logs: they can carry authorization codes.
            "access_log_format": '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss',
            "timeout": 30,
            "child_exit": _child_exit,
        },
    )

"""Running gateway code as RQ jobs: every job gets an application context.

Jobs take ids, never ORM objects, and let exceptions rise so that RQ records
them. Delivery is at least once, so every job must be idempotent.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from flask import Flask, current_app, has_app_context
from rq import SimpleWorker, Worker, get_current_job
from rq.worker import BaseWorker

from gateway.observability.logs import request_id_var
from gateway.observability.metrics import observe_job

P = ParamSpec("P")
R = TypeVar("R")

_process_app: Flask | None = None
_process_pid: int | None = None


def bind_process_app(app: Flask) -> None:
    """Make ``app`` the one jobs in this process (and its forked work horses) run in."""
    global _process_app, _process_pid
    _process_app = app
    _process_pid = os.getpid()


def _job_app() -> Flask:
    global _process_pid
    if has_app_context():
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    else:
        app = _process_app
        if app is None:
            from gateway import create_app

            app = create_app()
            bind_process_app(app)
    if _process_pid is not None and os.getpid() != _process_pid:
        # A forked work horse inherits its parent's pool and session (even its app context):
        # it must open its own connections, never use the parent's sockets.
        app.extensions["db"].forget_after_fork()
        _process_pid = os.getpid()
    return app


def task(func: Callable[P, R]) -> Callable[P, R]:
    """Run ``func`` inside the gateway's application context, its session closed after.

    When run by a worker, the job's log lines carry the request id of the request that
    queued it, and its outcome is counted for ``/metrics``.
    """

    @functools.wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        job = get_current_job()
        if job is None:
            return _call(func, *args, **kwargs)
        token = request_id_var.set(job.meta.get("request_id") or f"job-{job.id[:12]}")
        try:
            result = _call(func, *args, **kwargs)
        except BaseException:
            observe_job(func.__qualname__, "failed")
            raise
        finally:
            request_id_var.reset(token)
        observe_job(func.__qualname__, "succeeded")
        return result

    return run


def _call(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    app = _job_app()
    if has_app_context():
        return func(*args, **kwargs)
    with app.app_context():
        return func(*args, **kwargs)


def make_worker(app: Flask, name: str | None = None, fork: bool = True) -> BaseWorker:
    """An RQ worker on the app's queue; ``fork=False`` runs jobs in the worker process."""
    worker_class = Worker if fork else SimpleWorker
    return worker_class([app.extensions["queue"]], connection=app.extensions["redis"], name=name)

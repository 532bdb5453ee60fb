"""Periodic jobs, run by `gateway scheduler` through RQ's cron scheduler."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask
from rq.cron import CronScheduler

from gateway.db import utcnow
from gateway.jobs import task
from gateway.redis_client import get_redis

HEARTBEAT_KEY = "gateway:scheduler:heartbeat"


@task
def record_heartbeat() -> str:
    """Note that the scheduler and a worker are alive (operators read it)."""
    stamp = utcnow().isoformat()
    get_redis().set(HEARTBEAT_KEY, stamp, ex=600)
    return stamp


@dataclass(frozen=True)
class Periodic:
    """One periodic job: what runs, and every how many seconds (or on a cron line)."""

    func: Callable[..., Any]
    interval: int | None = None
    cron: str | None = None


def periodic_jobs(config: dict[str, Any]) -> list[Periodic]:
    """Every periodic job of the gateway; domains add theirs here."""
    from gateway.api.idempotency import purge_expired_keys
    from gateway.auth.housekeeping import prune_sign_on
    from gateway.auth.session import prune_sessions
    from gateway.callbacks.processing import sweep_inbox
    from gateway.sync.jobs import sweep as sweep_outbox
    from gateway.sync.reconcile import prune_runs, reconcile_all

    return [
        Periodic(record_heartbeat, interval=60),
        # Often: with the rows' short lease, a dead worker's rows are back within 30 s.
        Periodic(sweep_outbox, interval=config.get("SYNC_SWEEP_INTERVAL_SECONDS", 10)),
        Periodic(purge_expired_keys, interval=3600),
        Periodic(sweep_inbox, interval=config.get("CALLBACK_SWEEP_INTERVAL_SECONDS", 60)),
        Periodic(reconcile_all, interval=config.get("RECONCILE_INTERVAL_SECONDS", 900)),
        Periodic(prune_runs, interval=24 * 3600),
        Periodic(prune_sign_on, interval=3600),
        Periodic(prune_sessions, interval=3600),
    ]


def build_scheduler(app: Flask) -> CronScheduler:
    """A cron scheduler with every periodic job registered on the app's queue."""
    scheduler = CronScheduler(connection=app.extensions["redis"])
    queue_name = app.config["QUEUE_NAME"]
    for job in periodic_jobs(app.config):
        scheduler.register(
            job.func, queue_name, interval=job.interval, cron=job.cron, job_timeout=900
        )
    return scheduler

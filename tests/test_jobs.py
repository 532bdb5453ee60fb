"""Jobs run on a real Redis through an RQ worker, inside the app."""

from __future__ import annotations

from rq import SimpleWorker
from sqlalchemy import func, select, text

from gateway.db import db
from gateway.jobs import bind_process_app, make_worker, task
from gateway.members.models import Member
from gateway.schedule import HEARTBEAT_KEY, build_scheduler, record_heartbeat
from tests.factories import create_member


def test_job_runs_in_a_worker_with_app_context(app, redis_conn):
    queue = app.extensions["queue"]
    job = queue.enqueue(record_heartbeat)
    worker = SimpleWorker([queue], connection=app.extensions["redis"])
    with app.app_context():
        assert worker.work(burst=True)
    job.refresh()
    assert job.is_finished
    assert redis_conn.get(HEARTBEAT_KEY).decode() == job.return_value()


def test_scheduler_registers_the_periodic_jobs(app):
    scheduler = build_scheduler(app)
    names = {job.func_name for job in scheduler.get_jobs()}
    assert "gateway.schedule.record_heartbeat" in names
    enqueued = scheduler.enqueue_jobs()
    assert enqueued
    assert app.extensions["queue"].count == len(enqueued)


def test_sweep_intervals_come_from_the_settings(app):
    from gateway.schedule import periodic_jobs

    config = {**app.config, "SYNC_SWEEP_INTERVAL_SECONDS": 2, "CALLBACK_SWEEP_INTERVAL_SECONDS": 3}
    intervals = {job.func.__name__: job.interval for job in periodic_jobs(config)}
    assert (intervals["sweep"], intervals["sweep_inbox"]) == (2, 3)


def _backend_pid() -> int:
    """PostgreSQL's id of the server process behind the session's connection (0 on SQLite)."""
    if db.session.get_bind().dialect.name != "postgresql":
        return 0
    return db.session.scalar(text("SELECT pg_backend_pid()"))


@task
def backend_of_job() -> int:
    """A job that reports which database connection it used."""
    return _backend_pid()


def test_forked_work_horses_open_their_own_connections(app):
    """A forking worker whose parent holds a session mid-transaction (its app context is
    inherited by the work horses): each horse must open its own connection, never use the
    parent's socket."""
    bind_process_app(app)
    queue = app.extensions["queue"]
    jobs = [queue.enqueue(backend_of_job) for _ in range(2)]
    with app.app_context():
        create_member()
        parent = _backend_pid()  # the parent's session now holds a connection
        assert make_worker(app, fork=True).work(burst=True)
        assert db.session.scalar(select(func.count()).select_from(Member)) == 1
    for job in jobs:
        job.refresh()
        assert job.is_finished, job.latest_result().exc_string
        if parent:
            assert job.return_value() != parent


def test_expired_idempotency_keys_are_purged_on_a_schedule(app):
    from gateway.api.idempotency import purge_expired_keys
    from gateway.schedule import periodic_jobs

    assert purge_expired_keys in {job.func for job in periodic_jobs(app.config)}
    job = app.extensions["queue"].enqueue(purge_expired_keys)
    with app.app_context():
        assert SimpleWorker([app.extensions["queue"]], connection=app.extensions["redis"]).work(
            burst=True
        )
    job.refresh()
    assert job.is_finished
    assert job.return_value() == 0

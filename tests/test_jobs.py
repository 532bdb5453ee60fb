"""Jobs run on a real Redis through an RQ worker, inside the app."""

from __future__ import annotations

from rq import SimpleWorker

from gateway.schedule import HEARTBEAT_KEY, build_scheduler, record_heartbeat


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

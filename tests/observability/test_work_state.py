"""/metrics says when nothing moves: workers alive, the scheduler's heartbeat, open circuits."""

from __future__ import annotations

import time

from gateway.callbacks.models import InboxEvent
from gateway.db import db
from gateway.federation.platforms import add_platform
from gateway.jobs import make_worker
from gateway.schedule import record_heartbeat
from gateway.sync.circuit import CircuitBreaker
from tests.observability.test_metrics import _value


def _scrape(app) -> str:
    return app.test_client().get("/metrics").get_data(as_text=True)


def test_workers_alive_count_a_registered_worker_and_forget_a_dead_one(app, redis_conn):
    queue = app.config["QUEUE_NAME"]
    assert _value(_scrape(app), "gateway_workers", queue=queue) == 0
    worker = make_worker(app, name="metrics-live")
    worker.register_birth()
    assert _value(_scrape(app), "gateway_workers", queue=queue) == 1
    # A worker killed with SIGKILL never deregisters: its key expires and it must stop counting.
    redis_conn.delete(worker.key)
    assert _value(_scrape(app), "gateway_workers", queue=queue) == 0


def test_queue_depth_counts_waiting_jobs(app):
    queue = app.extensions["queue"]
    queue.enqueue(record_heartbeat)
    queue.enqueue(record_heartbeat)
    assert _value(_scrape(app), "gateway_queue_jobs", queue=queue.name) == 2


def test_the_scheduler_heartbeat_is_absent_until_it_runs(app):
    assert "gateway_scheduler_heartbeat_timestamp_seconds " not in _scrape(app)
    with app.app_context():
        record_heartbeat()
    stamp = _value(_scrape(app), "gateway_scheduler_heartbeat_timestamp_seconds")
    assert stamp is not None
    assert abs(stamp - time.time()) < 60


def test_an_open_circuit_is_shown_per_platform(app, redis_conn):
    with app.app_context():
        down = add_platform("down", "timerepublik", "https://a.example/api", credentials={"i": 1})
        add_platform("fine", "timerepublik", "https://b.example/api", credentials={"i": 1})
        db.session.commit()
        down_id = down.id
    breaker = CircuitBreaker(redis_conn, down_id, threshold=2)
    breaker.record_failure()
    breaker.record_failure()
    text = _scrape(app)
    assert _value(text, "gateway_circuit_open", platform="down") == 1
    assert _value(text, "gateway_circuit_open", platform="fine") == 0


def test_callbacks_are_counted_by_state(app):
    with app.app_context():
        platform = add_platform("tr", "timerepublik", "https://a.example/api", credentials={"i": 1})
        for n, state in enumerate(("failed", "failed", "processed", "parked")):
            db.session.add(
                InboxEvent(
                    platform_id=platform.id,
                    webhook_id=f"msg_{n}",
                    event_type="transfer.created",
                    body="{}",
                    state=state,
                )
            )
        db.session.commit()
    text = _scrape(app)
    assert _value(text, "gateway_callbacks", platform="tr", state="failed") == 2
    assert _value(text, "gateway_callbacks", platform="tr", state="processed") == 1
    assert _value(text, "gateway_callbacks", platform="tr", state="received") == 0


def test_redis_down_is_said_not_raised(make_app):
    app = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    assert _value(response.get_data(as_text=True), "gateway_redis_scrape_ok") == 0

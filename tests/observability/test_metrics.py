"""/metrics: who may read it, request and job metrics, and database state at scrape time."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

from gateway.db import db
from gateway.federation.platforms import add_platform
from gateway.jobs import make_worker, task
from gateway.sync.models import OutboxItem
from gateway.sync.outbox import record_effect
from tests.factories import bearer_headers

OUTSIDE = {"REMOTE_ADDR": "10.1.2.3"}


def _value(text: str, name: str, **labels: str) -> float | None:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
        if not labels and line.startswith(f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    assert wanted is not None
    return None


def test_only_loopback_a_metrics_token_or_an_admin_may_scrape(make_app):
    app = make_app(METRICS_TOKEN="scrape-me-0123456789")
    client = app.test_client()
    assert client.get("/metrics").status_code == 200
    refused = client.get("/metrics", environ_base=OUTSIDE)
    assert refused.status_code == 403
    assert refused.mimetype == "application/problem+json"
    wrong = client.get("/metrics", environ_base=OUTSIDE, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    token = client.get(
        "/metrics",
        environ_base=OUTSIDE,
        headers={"Authorization": "Bearer scrape-me-0123456789"},
    )
    assert token.status_code == 200
    with app.app_context():
        admin = bearer_headers("admin")
        reader = bearer_headers("hours:read")
    assert client.get("/metrics", environ_base=OUTSIDE, headers=admin).status_code == 200
    assert client.get("/metrics", environ_base=OUTSIDE, headers=reader).status_code == 403


def test_request_latency_by_route(client):
    client.get("/healthz")
    client.get("/no/such/page")
    text = client.get("/metrics").get_data(as_text=True)
    assert _value(
        text, "gateway_http_request_duration_seconds_count", route="/healthz", method="GET"
    )
    assert 'route="unmatched"' in text
    assert "/no/such/page" not in text


def test_outbox_depth_rises_and_falls(app, client):
    with app.app_context():
        platform = add_platform(
            "tr", "timerepublik", "https://tr.example/api", credentials={"client_id": "a"}
        )
        db.session.commit()

    def pending() -> float | None:
        text = client.get("/metrics").get_data(as_text=True)
        return _value(text, "gateway_outbox_items", platform="tr", state="pending")

    assert pending() == 0
    with app.app_context():
        ids = [record_effect(platform_id=platform.id, kind="update_member").id for _ in range(3)]
        # Committed with Redis holding the jobs; nobody runs them in this test.
        db.session.commit()
    assert pending() == 3
    lag = _value(
        client.get("/metrics").get_data(as_text=True), "gateway_sync_lag_seconds", platform="tr"
    )
    assert lag is not None
    assert lag >= 0
    with app.app_context():
        for item_id in ids[:2]:
            db.session.get(OutboxItem, item_id).state = "succeeded"
        db.session.commit()
    assert pending() == 1
    text = client.get("/metrics").get_data(as_text=True)
    assert _value(text, "gateway_outbox_items", platform="tr", state="succeeded") == 2
    assert _value(text, "gateway_reconciliation_open_differences", platform="tr") == 0


@task
def _sample_job(fail: bool) -> str:
    if fail:
        raise RuntimeError("planned failure")
    return "done"


def test_job_outcomes_are_counted(app, client):
    def count(outcome: str) -> float:
        text = client.get("/metrics").get_data(as_text=True)
        return _value(text, "gateway_jobs_total", job="_sample_job", outcome=outcome) or 0.0

    before_ok, before_failed = count("succeeded"), count("failed")
    queue = app.extensions["queue"]
    queue.enqueue(_sample_job, False)
    queue.enqueue(_sample_job, True)
    with app.app_context():
        make_worker(app, fork=False).work(burst=True)
    assert count("succeeded") == before_ok + 1
    assert count("failed") == before_failed + 1


def test_metrics_add_up_across_processes(tmp_path, app_config):
    """Multiprocess mode: a worker process's job counts reach the web process's /metrics."""
    prom = tmp_path / "prometheus"
    prom.mkdir()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(prom),
        "DATABASE_URL": app_config["DATABASE_URL"],
        "REDIS_URL": app_config["REDIS_URL"],
        "GATEWAY_DATA_DIR": app_config["GATEWAY_DATA_DIR"],
        "SECRET_KEY": app_config["SECRET_KEY"],
    }
    worker = "from gateway.observability.metrics import observe_job; observe_job('x', 'succeeded')"
    subprocess.run([sys.executable, "-c", worker], env=env, check=True, timeout=60)
    subprocess.run([sys.executable, "-c", worker], env=env, check=True, timeout=60)
    web = textwrap.dedent(  # the web process reads the job counts the worker wrote
        """
        from gateway import create_app
        print(create_app().test_client().get("/metrics").get_data(as_text=True))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", web], env=env, check=True, timeout=60, capture_output=True, text=True
    )
    out = done.stdout + done.stderr
    assert re.search(r'gateway_jobs_total\{job="x",outcome="succeeded"\} 2\.0', out), out

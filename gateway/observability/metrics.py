"""``/metrics`` for Prometheus.

Counters and histograms live in this process, or, when ``PROMETHEUS_MULTIPROC_DIR`` is set
(gunicorn workers, RQ workers: ``gateway run`` and the deploy files set it), in files that
every process writes and ``/metrics`` adds up. What the database knows (outbox depth, sync
lag, open reconciliation differences) is read at scrape time, so it is never stale and no
process has to keep it up to date.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Iterator

from flask import Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from gateway.db import db, utcnow
from gateway.problems import Problem
from gateway.proxy import is_local_request

log = logging.getLogger(__name__)

REQUEST_SECONDS = Histogram(
    "gateway_http_request_duration_seconds",
    "Time to answer an HTTP request, by route.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
JOBS = Counter(
    "gateway_jobs_total", "Jobs run by the workers, by function and outcome.", ["job", "outcome"]
)


class DatabaseStateCollector(Collector):
    """Outbox depth, sync lag and open differences, read from the database at scrape time."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        ok = GaugeMetricFamily(
            "gateway_state_scrape_ok", "1 when the database answered this scrape, else 0."
        )
        try:
            families = list(self._collect())
        except SQLAlchemyError:
            log.warning("metrics: the database did not answer; state metrics left out")
            ok.add_metric([], 0)
            yield ok
            return
        ok.add_metric([], 1)
        yield ok
        yield from families

    def _collect(self) -> Iterator[GaugeMetricFamily]:
        from gateway.callbacks.models import InboxEvent
        from gateway.federation.models import Platform
        from gateway.sync.models import (
            OUTBOX_STATES,
            OutboxItem,
            ReconciliationDifference,
        )
        from schemas.vocabulary import INBOX_STATES

        with self.app.app_context():
            names = dict(db.session.execute(select(Platform.id, Platform.name)).all())
            depth = GaugeMetricFamily(
                "gateway_outbox_items",
                "Outbound items by platform and state.",
                labels=["platform", "state"],
            )
            counts = {
                (pid, state): n
                for pid, state, n in db.session.execute(
                    select(OutboxItem.platform_id, OutboxItem.state, func.count()).group_by(
                        OutboxItem.platform_id, OutboxItem.state
                    )
                )
            }
            for pid, name in names.items():
                for state in OUTBOX_STATES:
                    depth.add_metric([name, state], counts.get((pid, state), 0))
            yield depth

            lag = GaugeMetricFamily(
                "gateway_sync_lag_seconds",
                "Age of the oldest outbound item not delivered yet, by platform.",
                labels=["platform"],
            )
            oldest = dict(
                db.session.execute(
                    select(OutboxItem.platform_id, func.min(OutboxItem.created_at))
                    .where(OutboxItem.state.in_(("pending", "running")))
                    .group_by(OutboxItem.platform_id)
                ).all()
            )
            now = utcnow()
            for pid, name in names.items():
                age = (now - oldest[pid]).total_seconds() if oldest.get(pid) else 0.0
                lag.add_metric([name], max(age, 0.0))
            yield lag

            differences = GaugeMetricFamily(
                "gateway_reconciliation_open_differences",
                "Wallet balance differences not resolved yet, by platform.",
                labels=["platform"],
            )
            open_by_platform = dict(
                db.session.execute(
                    select(ReconciliationDifference.platform_id, func.count())
                    .where(ReconciliationDifference.resolved_at.is_(None))
                    .group_by(ReconciliationDifference.platform_id)
                ).all()
            )
            for pid, name in names.items():
                differences.add_metric([name], open_by_platform.get(pid, 0))
            yield differences

            callbacks = GaugeMetricFamily(
                "gateway_callbacks",
                "Callback events from partners, by platform and state.",
                labels=["platform", "state"],
            )
            by_state = {
                (pid, state): n
                for pid, state, n in db.session.execute(
                    select(InboxEvent.platform_id, InboxEvent.state, func.count()).group_by(
                        InboxEvent.platform_id, InboxEvent.state
                    )
                )
            }
            for pid, name in names.items():
                for state in INBOX_STATES:
                    callbacks.add_metric([name, state], by_state.get((pid, state), 0))
            yield callbacks

            parked = GaugeMetricFamily(
                "gateway_callbacks_parked",
                "Callback events parked for operators, by platform.",
                labels=["platform"],
            )
            parked_by_platform = dict(
                db.session.execute(
                    select(InboxEvent.platform_id, func.count())
                    .where(InboxEvent.state == "parked")
                    .group_by(InboxEvent.platform_id)
                ).all()
            )
            for pid, name in names.items():
                parked.add_metric([name], parked_by_platform.get(pid, 0))
            yield parked


def _allowed() -> bool:
    """A local client (never one relayed by a proxy), ``METRICS_TOKEN`` or an admin token."""
    if is_local_request():
        return True
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return False
    expected = current_app.config.get("METRICS_TOKEN")
    if expected and hmac.compare_digest(header[7:].encode(), expected.encode()):
        return True
    from gateway.auth.models import OAuthToken, token_digest

    token = db.session.scalar(
        select(OAuthToken).where(OAuthToken.access_token_hash == token_digest(header[7:]))
    )
    return (
        token is not None
        and not token.is_expired()
        and not token.is_revoked()
        and "admin" in token.scopes
    )


def observe_job(job: str, outcome: str) -> None:
    """Count one job run (called by the job wrapper in every worker)."""
    JOBS.labels(job=job, outcome=outcome).inc()


def init_app(app: Flask) -> None:
    """Time every request; serve ``/metrics``."""
    # Not auto-described: registering must not query a database that may not be migrated yet.
    from gateway.observability.work_state import WorkStateCollector

    state = CollectorRegistry()
    state.register(DatabaseStateCollector(app))
    state.register(WorkStateCollector(app))

    @app.before_request
    def _start_timer() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.pop("metrics_started", None)
        if started is not None and request.endpoint != "metrics":
            route = request.url_rule.rule if request.url_rule else "unmatched"
            REQUEST_SECONDS.labels(request.method, route, str(response.status_code)).observe(
                time.perf_counter() - started
            )
        return response

    @app.get("/metrics", endpoint="metrics")
    def metrics() -> Response:
        if not _allowed():
            raise Problem(
                403,
                "Metrics are served to loopback, METRICS_TOKEN or an admin token.",
                title="Forbidden",
                headers={"WWW-Authenticate": 'Bearer realm="gateway"'},
            )
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            own = generate_latest(registry)
        else:
            own = generate_latest(REGISTRY)
        return Response(own + generate_latest(state), mimetype=CONTENT_TYPE_LATEST)

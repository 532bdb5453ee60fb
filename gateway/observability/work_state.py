"""What carries the work, read from Redis at scrape time: workers, queue, scheduler, circuits.

These are the figures an alert needs when nothing moves at all (no worker alive, the scheduler
silent, a platform's circuit held open): counters in the workers cannot say that, since a dead
worker counts nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

import redis
from flask import Flask
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from rq import Worker
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from gateway.db import db

log = logging.getLogger(__name__)


class WorkStateCollector(Collector):
    """Workers on the gateway's queue, its depth, the scheduler's heartbeat, open circuits."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        ok = GaugeMetricFamily(
            "gateway_redis_scrape_ok", "1 when Redis answered this scrape, else 0."
        )
        try:
            families = list(self._collect())
        except RedisError:
            log.warning("metrics: Redis did not answer; work state metrics left out")
            ok.add_metric([], 0)
            yield ok
            return
        ok.add_metric([], 1)
        yield ok
        yield from families

    def _collect(self) -> Iterator[GaugeMetricFamily]:
        from gateway.schedule import HEARTBEAT_KEY

        connection = self.app.extensions["redis"]
        queue = self.app.extensions["queue"]
        workers = GaugeMetricFamily(
            "gateway_workers",
            "RQ workers alive on the gateway's queue (a killed worker counts until its "
            "registration expires, within RQ's worker TTL of a few minutes).",
            labels=["queue"],
        )
        # Worker.all drops registrations whose key expired; Worker.count would still count
        # them while no live worker is left to clean the set.
        workers.add_metric([queue.name], len(Worker.all(queue=queue)))
        yield workers

        depth = GaugeMetricFamily(
            "gateway_queue_jobs", "Jobs waiting on the gateway's queue.", labels=["queue"]
        )
        depth.add_metric([queue.name], queue.count)
        yield depth

        stamp = connection.get(HEARTBEAT_KEY)
        if stamp is not None:
            heartbeat = GaugeMetricFamily(
                "gateway_scheduler_heartbeat_timestamp_seconds",
                "When a heartbeat job last ran (the scheduler queued it, a worker ran it).",
            )
            heartbeat.add_metric([], datetime.fromisoformat(stamp.decode()).timestamp())
            yield heartbeat

        yield from self._circuits(connection)

    def _circuits(self, connection: redis.Redis) -> Iterator[GaugeMetricFamily]:
        from gateway.federation.models import Platform
        from gateway.sync.circuit import CircuitBreaker

        try:
            with self.app.app_context():
                platforms = db.session.execute(
                    select(Platform.id, Platform.name).where(Platform.enabled.is_(True))
                ).all()
        except SQLAlchemyError:
            return  # gateway_state_scrape_ok already says the database did not answer
        circuit = GaugeMetricFamily(
            "gateway_circuit_open",
            "1 while a platform's circuit breaker holds its deliveries (open or half-open).",
            labels=["platform"],
        )
        for platform_id, name in platforms:
            state = CircuitBreaker(connection, platform_id).state()
            circuit.add_metric([name], 0 if state == "closed" else 1)
        yield circuit

"""Handing committed outbox rows to the workers: one drain job per platform, not one per row.

A Redis marker per platform means "a drain is queued or running and will look at the outbox
after now". Dispatch sets it with SET NX (one pipeline for every platform a commit touched) and
enqueues a drain only where it was not set yet. A running drain keeps its marker fresh; before
stopping it deletes the marker and then looks for due rows once more, so a row committed at any
moment is seen by that last look or by the drain its own dispatch enqueues. Markers expire and
the sweeper overrides them for rows overdue too long: a lost marker delays work, never loses it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from datetime import timedelta

from flask import current_app
from redis.exceptions import RedisError

from gateway.redis_client import get_queue, get_redis

DRAIN_MARKER = "gateway:outbox:drain:"
WAKE_MARKER = "gateway:outbox:wake:"
# The outcome lives in the outbox rows; RQ need not keep results of successful drains.
JOB_OPTIONS = {"job_timeout": 600, "result_ttl": 0, "failure_ttl": 7 * 24 * 3600}


def lease_seconds() -> int:
    """How long a claimed row (and a held slot) stays ours unless renewed: a running drain
    renews both, so a dead worker's rows are free again this long after it died."""
    return int(current_app.config.get("SYNC_LEASE_SECONDS", 20))


def marker_seconds() -> int:
    """How long a drain marker lives unless refreshed."""
    return min(lease_seconds(), 60)


def enqueue_drain(platform_id: str, delay: float = 0.0) -> None:
    """Queue a drain of the platform, now or in ``delay`` seconds (no marker involved)."""
    from gateway.sync.drain import drain

    queue = get_queue()
    if delay > 0:
        queue.enqueue_in(timedelta(seconds=delay), drain, platform_id, **JOB_OPTIONS)
    else:
        queue.enqueue(drain, platform_id, **JOB_OPTIONS)


def ensure_drains(platform_ids: Iterable[str]) -> int:
    """Make sure a drain will look at each platform after now; return how many were queued."""
    ids = sorted(set(platform_ids))
    if not ids:
        return 0
    pipe = get_redis().pipeline(transaction=False)
    for platform_id in ids:
        pipe.set(DRAIN_MARKER + platform_id, "1", nx=True, ex=marker_seconds())
    fresh = [
        platform_id for platform_id, was_set in zip(ids, pipe.execute(), strict=True) if was_set
    ]
    for n, platform_id in enumerate(fresh):
        try:
            enqueue_drain(platform_id)
        except RedisError:
            # A marker without its job would hold back dispatch until it expires.
            get_redis().delete(*(DRAIN_MARKER + p for p in fresh[n:]))
            raise
    return len(fresh)


def wake(platform_id: str, delay: float) -> None:
    """Drain the platform in ``delay`` seconds (rows backing off); one wake per second at most."""
    if delay <= 0:
        ensure_drains([platform_id])
        return
    second = math.ceil(time.time() + delay)
    if get_redis().set(f"{WAKE_MARKER}{platform_id}:{second}", "1", nx=True, ex=int(delay) + 60):
        # RQ schedules in whole seconds, rounding down: one more keeps a wake from being early.
        enqueue_drain(platform_id, delay=second - time.time() + 1)

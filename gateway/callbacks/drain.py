"""Handing stored callback events to workers: a Redis list of inbox ids and a drain job.

An RQ job per event cost more than verifying and storing the event. Instead the inbox id is
pushed onto a list and, in the same pipeline, a marker saying "a drain job is queued or running"
is set if absent (SET NX with a TTL); only the request that set it enqueues the job. The job pops
ids in batches and applies each with ``process_event``, which is idempotent; when the list is
empty it clears the marker and looks once more, so an id pushed while it was finishing is never
stranded (its pusher saw the marker and left it to the job). While a backlog lasts, a drain calls
helpers on further markers, so several workers share it, as the per-event jobs did.

Redis only carries work: an id lost with Redis (down at arrival, flushed, a killed job) belongs to
a row still ``received``, and ``sweep_inbox`` hands it over again once it is due.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence

import redis
from flask import current_app

from gateway.db import db
from gateway.jobs import task
from gateway.redis_client import get_queue, get_redis

log = logging.getLogger(__name__)

BATCH = 100
# A drain job hands over to a fresh one after this much work, so no job nears its timeout.
WORK_SECONDS = 60.0
JOB_TIMEOUT = 600
# A marker outlives a queued job's wait; a running drain renews it with every batch.
MARKER_TTL = 120
MAX_DRAINS = 4


def _list_key() -> str:
    return f"gateway:{current_app.config['QUEUE_NAME']}:callbacks:inbox"


def _marker_key(slot: int) -> str:
    return f"gateway:{current_app.config['QUEUE_NAME']}:callbacks:drain:{slot}"


def _enqueue_drain(slot: int) -> None:
    """Enqueue the drain job of ``slot`` (its marker is held); free the marker if that fails."""
    try:
        get_queue().enqueue(
            drain_inbox, slot, job_timeout=JOB_TIMEOUT, result_ttl=0, failure_ttl=7 * 24 * 3600
        )
    except Exception:
        with contextlib.suppress(redis.RedisError):
            get_redis().delete(_marker_key(slot))
        raise


def hand_over(inbox_ids: Sequence[str]) -> bool:
    """Queue committed inbox rows for processing; True when this call started a drain job.

    One round trip in the common case (a drain is already pending); raises when Redis is down,
    which loses nothing: the rows stay ``received`` for the sweeper.
    """
    if not inbox_ids:
        return False
    pipe = get_redis().pipeline(transaction=False)
    pipe.rpush(_list_key(), *inbox_ids)
    pipe.set(_marker_key(0), "1", nx=True, ex=MARKER_TTL)
    _, claimed = pipe.execute()
    if claimed:
        _enqueue_drain(0)
    return bool(claimed)


def _call_helper(slot: int, waiting: int) -> None:
    """With a backlog, start the next slot's drain (if none runs) so another worker helps."""
    helper = slot + 1
    if waiting < BATCH or helper >= MAX_DRAINS:
        return
    if get_redis().set(_marker_key(helper), "1", nx=True, ex=MARKER_TTL):
        _enqueue_drain(helper)


def _apply(inbox_id: str) -> bool:
    """Apply one event in a session of its own; False when the attempt failed (counted and
    recorded on the row: the sweeper tries again after its backoff, until it is ``failed``)."""
    from gateway.callbacks.processing import process_event

    try:
        process_event(inbox_id)
    except Exception:
        log.exception("an attempt at callback event %s failed; its row says why", inbox_id)
        return False
    finally:
        db.remove()
    return True


def _finished(slot: int) -> bool:
    """Clear the marker once the list is empty; False when an id arrived meanwhile (go on)."""
    connection = get_redis()
    connection.delete(_marker_key(slot))
    if slot:
        return True  # helpers just stop; slot 0 owns the race below
    # A pusher that saw our marker before it was cleared left its id to us: look once more.
    if not connection.llen(_list_key()):
        return True
    return not connection.set(_marker_key(0), "1", nx=True, ex=MARKER_TTL)


@task
def drain_inbox(slot: int = 0) -> int:
    """Apply the events whose ids wait in the list (an RQ job); returns how many it applied."""
    connection = get_redis()
    deadline = time.monotonic() + WORK_SECONDS
    applied = failed = 0
    try:
        while True:
            ids = connection.lpop(_list_key(), BATCH)
            if not ids:
                if _finished(slot):
                    break
                continue
            connection.expire(_marker_key(slot), MARKER_TTL)
            _call_helper(slot, int(connection.llen(_list_key())))
            for raw in ids:
                if _apply(raw.decode()):
                    applied += 1
                else:
                    failed += 1
            if time.monotonic() > deadline:
                _enqueue_drain(slot)  # the marker stays held: the next job goes on from here
                break
    except Exception:
        # Free the marker so that the next event starts a drain at once, not after its TTL.
        with contextlib.suppress(redis.RedisError):
            connection.delete(_marker_key(slot))
        raise
    if failed:
        # Raised after the others were applied, so RQ records the failure.
        raise RuntimeError(f"{failed} callback attempt(s) failed; their rows say why")
    return applied

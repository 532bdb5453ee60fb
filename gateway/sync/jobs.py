"""RQ jobs of the sync engine: deliver one outbox row; sweep rows whose job was lost.

A row is claimed with a compare-and-set on its state, so duplicate jobs for one row (after a
sweep, a retry, a Redis flush) are harmless: only one runs the remote call, and that call
carries the row's idempotency key, so even a lease that expired mid-call cannot apply twice.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from gateway.db import db, utcnow
from gateway.federation.models import Platform
from gateway.jobs import task
from gateway.redis_client import get_queue, get_redis
from gateway.sync.circuit import CircuitBreaker
from gateway.sync.limits import platform_slot
from gateway.sync.models import FINAL_STATES, OutboxItem, SyncAttempt
from gateway.sync.policy import current_policy

log = logging.getLogger(__name__)

QUEUED_MARKER = "gateway:outbox:queued:"


def _lease_seconds() -> int:
    return int(current_app.config.get("SYNC_LEASE_SECONDS", 180))


def schedule(outbox_id: str, delay: float = 0.0) -> None:
    """Enqueue a delivery of the row, now or after ``delay`` seconds, and mark it queued."""
    queue = get_queue()
    # The marker lets the sweeper tell a row whose job is waiting from one whose job was lost.
    get_redis().set(QUEUED_MARKER + outbox_id, "1", ex=int(delay) + _lease_seconds())
    # The outcome lives in the outbox row; RQ need not keep results of successful jobs.
    options = {"job_timeout": 120, "result_ttl": 0, "failure_ttl": 7 * 24 * 3600}
    if delay > 0:
        queue.enqueue_in(timedelta(seconds=delay), deliver, outbox_id, **options)
    else:
        queue.enqueue(deliver, outbox_id, **options)


def _postpone(item_id: str, delay: float, *, count_attempt: bool = False) -> None:
    """Put a claimed row back to pending for later (not an attempt unless said so)."""
    values = {"state": "pending", "next_attempt_at": utcnow() + timedelta(seconds=delay)}
    if not count_attempt:
        values["attempts"] = OutboxItem.attempts - 1
    db.session.execute(
        update(OutboxItem)
        .where(OutboxItem.id == item_id, OutboxItem.state == "running")
        .values(**values)
    )
    db.session.commit()
    schedule(item_id, delay)


def _claim(outbox_id: str) -> OutboxItem | None:
    """Move a due pending row to running (one winner); None when it is not ours to run."""
    now = utcnow()
    claimed = db.session.execute(
        update(OutboxItem)
        .where(
            OutboxItem.id == outbox_id,
            OutboxItem.state == "pending",
            OutboxItem.next_attempt_at <= now + timedelta(seconds=1),
        )
        .values(
            state="running",
            attempts=OutboxItem.attempts + 1,
            next_attempt_at=now + timedelta(seconds=_lease_seconds()),
        )
    )
    db.session.commit()
    if claimed.rowcount != 1:
        return None
    return db.session.get(OutboxItem, outbox_id, populate_existing=True)


def _dependency_state(item: OutboxItem) -> str | None:
    if item.depends_on_id is None:
        return None
    return db.session.scalar(select(OutboxItem.state).where(OutboxItem.id == item.depends_on_id))


def _finish(
    item: OutboxItem,
    *,
    state: str,
    outcome: str,
    started: float,
    error: str | None = None,
    code: str | None = None,
    result: dict | None = None,
    retry_in: float | None = None,
) -> None:
    """Record the attempt and the row's new state in one transaction."""
    now = utcnow()
    item.state = state
    item.last_error = error
    item.last_error_code = code
    if result is not None:
        item.result = result
    if state in FINAL_STATES:
        item.completed_at = now
    if retry_in is not None:
        item.next_attempt_at = now + timedelta(seconds=retry_in)
    db.session.add(
        SyncAttempt(
            outbox_id=item.id,
            platform_id=item.platform_id,
            started_at=now - timedelta(seconds=time.monotonic() - started),
            duration_ms=int((time.monotonic() - started) * 1000),
            outcome=outcome,
            error=error,
            error_code=code,
        )
    )
    db.session.commit()


@task
def deliver(outbox_id: str) -> str:
    """Deliver one outbox row to its platform; returns what happened (for RQ's result)."""
    from gateway.sync import handlers
    from gateway.sync.remote import ConflictError, PermanentError, RetryableError

    get_redis().delete(QUEUED_MARKER + outbox_id)
    item = _claim(outbox_id)
    if item is None:
        return "not due"
    dependency = _dependency_state(item)
    if dependency in ("dead", "skipped"):
        started = time.monotonic()
        _finish(
            item,
            state="dead",
            outcome="dead",
            started=started,
            error=f"depends on {item.depends_on_id}, which is {dependency}",
            code="dependency_failed",
        )
        return "dependency failed"
    if dependency in ("pending", "running"):
        _postpone(item.id, 2.0)
        return "waiting for dependency"
    platform = db.session.get(Platform, item.platform_id)
    if platform is None or not platform.enabled:
        _postpone(item.id, 60.0)
        return "platform disabled"
    config = current_app.config
    breaker = CircuitBreaker(
        get_redis(),
        platform.id,
        threshold=int(config.get("SYNC_CIRCUIT_THRESHOLD", 5)),
        cooldown=int(config.get("SYNC_CIRCUIT_COOLDOWN_SECONDS", 30)),
    )
    wait = breaker.blocked_for()
    if wait > 0:
        _postpone(item.id, wait)
        return "circuit open"

    policy = current_policy()
    with platform_slot(get_redis(), platform.id, item.id, platform.max_concurrency) as slot:
        if not slot:
            _postpone(item.id, 0.5)
            return "no free slot"
        started = time.monotonic()
        try:
            result = handlers.run(item, platform)
        except handlers.NotReady as exc:
            # Our side is not ready (a registration still running): no attempt, no failure.
            _postpone(item.id, exc.retry_after or 2.0)
            return "not ready"
        except RetryableError as exc:
            if exc.status != 429:
                # A 429 says the platform is up and when to come back: Retry-After handles it.
                breaker.record_failure()
            if policy.gives_up_after(item.attempts):
                _finish(
                    item,
                    state="dead",
                    outcome="dead",
                    started=started,
                    error=f"gave up after {item.attempts} attempts: {exc}",
                    code="retries_exhausted",
                )
                return "dead"
            delay = policy.delay(item.attempts, exc.retry_after)
            _finish(
                item,
                state="pending",
                outcome="retry",
                started=started,
                error=str(exc),
                code=type(exc).__name__,
                retry_in=delay,
            )
            schedule(item.id, delay)
            return "retry"
        except ConflictError as exc:
            breaker.record_success()
            result = handlers.resolve_conflict(item, platform, exc)
            _finish(item, state="succeeded", outcome="conflict", started=started, result=result)
            _release_dependents(item.id)
            return "conflict resolved"
        except PermanentError as exc:
            breaker.record_success()  # the platform answered; it is not down
            _finish(
                item,
                state="dead",
                outcome="dead",
                started=started,
                error=str(exc),
                code=getattr(exc, "code", None) or "permanent",
            )
            return "dead"
        breaker.record_success()
        _finish(item, state="succeeded", outcome="ok", started=started, result=result)
    _release_dependents(item.id)
    return "succeeded"


def _release_dependents(outbox_id: str) -> None:
    """Rows waiting on this one may run now instead of at their next poll."""
    waiting = db.session.scalars(
        select(OutboxItem.id).where(
            OutboxItem.depends_on_id == outbox_id, OutboxItem.state == "pending"
        )
    ).all()
    if waiting:
        db.session.execute(
            update(OutboxItem).where(OutboxItem.id.in_(waiting)).values(next_attempt_at=utcnow())
        )
        db.session.commit()
        for dependent in waiting:
            schedule(dependent)


@task
def sweep(batch: int = 500) -> dict[str, int]:
    """Re-enqueue due rows whose job is gone, and free rows whose worker died mid-run."""
    now = utcnow()
    expired = db.session.execute(
        update(OutboxItem)
        .where(OutboxItem.state == "running", OutboxItem.next_attempt_at < now)
        .values(state="pending", next_attempt_at=now)
    ).rowcount
    db.session.commit()
    due = db.session.scalars(
        select(OutboxItem.id)
        .where(OutboxItem.state == "pending", OutboxItem.next_attempt_at <= now)
        .order_by(OutboxItem.next_attempt_at)
        .limit(batch)
    ).all()
    redis = get_redis()
    lost = [i for i in due if not redis.exists(QUEUED_MARKER + i)]
    for outbox_id in lost:
        schedule(outbox_id)
    if expired or lost:
        log.info("outbox sweep: %d lease(s) expired, %d row(s) re-enqueued", expired, len(lost))
    return {"expired_leases": expired, "reenqueued": len(lost)}

"""RQ jobs of the sync engine besides the drain: deliver one row by id; sweep lost work.

A row is claimed with a compare-and-set on its state, so a row handed out twice (after a sweep,
a retry, a Redis flush) runs once: only one claim wins, and the remote call carries the row's
idempotency key, so even a lease that expired mid-call cannot apply twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from gateway.db import db, utcnow
from gateway.federation.models import Platform
from gateway.jobs import task
from gateway.redis_client import get_redis
from gateway.sync.claims import (
    claim_one,
    expire_leases,
    follow_dependencies,
    platforms_with_due_rows,
    skip_with_skipped_transfers,
)
from gateway.sync.delivery import Turn, breaker_for, send
from gateway.sync.dispatch import DRAIN_MARKER, ensure_drains, lease_seconds, wake
from gateway.sync.limits import platform_slot
from gateway.sync.policy import current_policy
from gateway.sync.verdicts import Verdict, postponed, record

log = logging.getLogger(__name__)

# A single delivery renews nothing: its lease outlasts a call's connect and read timeouts.
SINGLE_CALL_LEASE_SECONDS = 120
# Due rows no drain has claimed for this long are dispatched even if a marker says a drain is
# coming: that drain is lost (its worker died) or stuck.
OVERDUE_SECONDS = 60


def _conclude(verdict: Verdict) -> str:
    """Write one row's verdict, wake whatever it lets run, and say what happened."""
    released = record([verdict])
    db.session.commit()
    if released:
        ensure_drains(released)
    if verdict.state == "pending" and verdict.retry_in is not None:
        wake(verdict.platform_id, verdict.retry_in)
    return verdict.label


@task
def deliver(outbox_id: str) -> str:
    """Deliver one outbox row now, in this thread; returns what happened (RQ's result).

    Drains deliver rows in bulk; this is for one row by id (and for jobs queued before drains).
    """
    item = claim_one(outbox_id, max(lease_seconds(), SINGLE_CALL_LEASE_SECONDS))
    if item is None:
        return "not due"
    platform = db.session.get(Platform, item.platform_id)
    redis = get_redis()
    turn = Turn(platform, current_policy(), breaker_for(redis, item.platform_id))
    blocked = turn.waiting_on_dependency([item]).get(item.id)
    if blocked is not None:
        return _conclude(blocked)
    if platform is None or not platform.enabled:
        return _conclude(postponed(item, 60.0, "platform disabled"))
    wait = turn.breaker.blocked_for()
    if wait > 0:
        return _conclude(postponed(item, wait, "circuit open"))
    limit = platform.max_concurrency
    lease = max(lease_seconds(), SINGLE_CALL_LEASE_SECONDS)
    with platform_slot(redis, platform.id, item.id, limit, lease) as slot:
        if not slot:
            return _conclude(postponed(item, 0.5, "no free slot"))
        calls, verdicts = turn.prepare([item])
        for prepared, call in calls:
            verdicts.append(turn.settle(prepared, call, send(call)))
    turn.account(verdicts)
    return _conclude(verdicts[0])


@task
def sweep() -> dict[str, int]:
    """Free rows whose worker died mid-run, bring rows in line with their dependencies (changed
    outside a delivery, e.g. by an operator), and dispatch platforms whose due rows wait unseen."""
    expired = expire_leases()
    follow_dependencies()
    skip_with_skipped_transfers()
    db.session.commit()
    due, overdue = platforms_with_due_rows(utcnow() - timedelta(seconds=OVERDUE_SECONDS))
    redis = get_redis()
    pipe = redis.pipeline(transaction=False)
    for platform_id in sorted(due):
        pipe.exists(DRAIN_MARKER + platform_id)
    marked = {p for p, found in zip(sorted(due), pipe.execute(), strict=True) if found}
    # An overdue platform's marker is stale: drop it so that a drain is queued.
    stale = overdue & marked
    if stale:
        redis.delete(*(DRAIN_MARKER + p for p in stale))
    dispatched = ensure_drains((due - marked) | stale)
    if expired or dispatched:
        log.info("outbox sweep: %d lease(s) expired, %d drain(s) queued", expired, dispatched)
    return {"expired_leases": expired, "reenqueued": dispatched}

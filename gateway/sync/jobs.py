"""The sync engine's job besides the drain: sweep work that Redis lost.

Rows are delivered only by drains (``gateway.sync.drain``); the sweep frees rows whose worker
died mid-run and queues a drain for every platform whose due rows no drain is seeing to.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from gateway.db import db, utcnow
from gateway.jobs import task
from gateway.redis_client import get_redis
from gateway.sync.claims import (
    expire_leases,
    follow_dependencies,
    platforms_with_due_rows,
    skip_with_skipped_transfers,
)
from gateway.sync.dispatch import DRAIN_MARKER, ensure_drains

log = logging.getLogger(__name__)

# A single delivery renews nothing: its lease outlasts a call's connect and read timeouts.
SINGLE_CALL_LEASE_SECONDS = 120
# Due rows no drain has claimed for this long are dispatched even if a marker says a drain is
# coming: that drain is lost (its worker died) or stuck.
OVERDUE_SECONDS = 60


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

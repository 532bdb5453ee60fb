"""What operators can do; each action writes its audit row in the same transaction."""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError

from gateway.admin.models import AdminAction
from gateway.callbacks.models import InboxEvent
from gateway.callbacks.processing import reprocess_event
from gateway.db import db, utcnow
from gateway.federation.models import Platform
from gateway.jobs import task
from gateway.problems import Problem
from gateway.redis_client import get_queue
from gateway.sync.dispatch import ensure_drains
from gateway.sync.models import OutboxItem
from gateway.sync.reconcile import reconcile_platform

log = logging.getLogger(__name__)

RETRYABLE_STATES = ("dead", "skipped", "pending")


def _audit(actor: str, action: str, target_type: str, target_id: str, **details: Any) -> None:
    reason = details.pop("reason", None)
    db.session.add(
        AdminAction(
            actor=actor,
            action=action,
            target_type=target_type,
            target_id=target_id,
            reason=reason,
            details=details,
        )
    )


def _item(item_id: str) -> OutboxItem:
    item = db.session.get(OutboxItem, item_id)
    if item is None:
        raise Problem(404, f"No outbox item {item_id}.", title="Not found")
    return item


def retry_item(actor: str, item_id: str) -> OutboxItem:
    """Deliver a dead, skipped or waiting item again now, with a fresh set of attempts."""
    item = _item(item_id)
    if item.state not in RETRYABLE_STATES:
        raise Problem(
            409,
            f"The item is {item.state}; only dead, skipped or pending items can be retried.",
            title="Cannot retry",
        )
    previous = item.state
    item.state = "pending"
    item.attempts = 0
    item.next_attempt_at = utcnow()
    item.completed_at = None
    item.skipped_reason = None
    _audit(actor, "outbox.retry", "outbox", item.id, previous_state=previous)
    db.session.commit()
    try:
        ensure_drains([item.platform_id])
    except RedisError:
        log.warning("retry of %s saved; the sweeper will dispatch it (Redis unavailable)", item.id)
    return item


def skip_item(actor: str, item_id: str, reason: str) -> OutboxItem:
    """Give up on an item on purpose, saying why."""
    item = _item(item_id)
    if item.state in ("succeeded", "skipped"):
        raise Problem(409, f"The item is already {item.state}.", title="Cannot skip")
    previous = item.state
    item.state = "skipped"
    item.skipped_reason = reason
    item.completed_at = utcnow()
    _audit(actor, "outbox.skip", "outbox", item.id, reason=reason, previous_state=previous)
    db.session.commit()
    return item


@task
def run_reconciliation(platform_id: str) -> str:
    """The job an operator's "reconcile now" queues."""
    return reconcile_platform(platform_id, trigger="operator").state


def reconcile_now(actor: str, platform: Platform) -> str:
    """Queue a reconciliation of ``platform``; returns the job id."""
    _audit(actor, "platform.reconcile", "platform", platform.name)
    db.session.commit()
    try:
        job = get_queue().enqueue(run_reconciliation, platform.id, job_timeout=3600)
    except RedisError as exc:
        raise Problem(503, "The job queue is unavailable; try again shortly.") from exc
    return job.id


def reprocess_callback(actor: str, event_id: str) -> str:
    """Apply a parked or failed callback event again; returns its new state."""
    event = db.session.get(InboxEvent, event_id)
    if event is None:
        raise Problem(404, f"No callback event {event_id}.", title="Not found")
    if event.state not in ("parked", "failed"):
        raise Problem(409, f"The event is {event.state}; only parked or failed ones.")
    _audit(actor, "callback.reprocess", "callback", event.id, previous_state=event.state)
    db.session.commit()
    reprocess_event(event.id)
    db.session.expire_all()
    return db.session.get(InboxEvent, event_id).state

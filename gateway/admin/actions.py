"""What operators can do; each action writes its audit row in the same transaction."""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import select

from gateway.admin import queries
from gateway.admin.models import AdminAction
from gateway.callbacks.models import InboxEvent
from gateway.callbacks.processing import reprocess_event
from gateway.db import db, utcnow
from gateway.federation.models import Platform
from gateway.jobs import task
from gateway.members import accounts
from gateway.members.models import Member
from gateway.problems import Problem
from gateway.redis_client import get_queue
from gateway.sync.dispatch import ensure_drains
from gateway.sync.models import OutboxItem, ReconciliationDifference
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


def _retry(actor: str, item: OutboxItem, reason: str | None) -> None:
    if item.state not in RETRYABLE_STATES:
        raise Problem(
            409,
            f"The item is {item.state}; only dead, skipped or pending items can be retried.",
            title="Cannot retry",
        )
    previous, spent = item.state, item.attempts
    # A fresh budget of attempts for the retry policy; the attempts already made stay in
    # sync_attempts and the audit row says how many the last round spent.
    item.state = "pending"
    item.attempts = 0
    item.next_attempt_at = utcnow()
    item.completed_at = None
    item.skipped_reason = None
    _audit(
        actor,
        "outbox.retry",
        "outbox",
        item.id,
        reason=reason,
        previous_state=previous,
        attempts_before=spent,
    )


def _skip(actor: str, item: OutboxItem, reason: str) -> None:
    if item.state in ("succeeded", "skipped"):
        raise Problem(409, f"The item is already {item.state}.", title="Cannot skip")
    previous = item.state
    item.state = "skipped"
    item.skipped_reason = reason
    item.completed_at = utcnow()
    _audit(actor, "outbox.skip", "outbox", item.id, reason=reason, previous_state=previous)


def _wake(platform_ids: list[str]) -> None:
    try:
        ensure_drains(sorted(set(platform_ids)))
    except RedisError:
        log.warning("retry saved; the sweeper will dispatch it (Redis unavailable)")


def retry_item(actor: str, item_id: str, reason: str | None = None) -> OutboxItem:
    """Deliver a dead, skipped or waiting item again now."""
    item = _item(item_id)
    _retry(actor, item, reason)
    db.session.commit()
    _wake([item.platform_id])
    return item


def skip_item(actor: str, item_id: str, reason: str) -> OutboxItem:
    """Give up on an item on purpose, saying why."""
    item = _item(item_id)
    _skip(actor, item, reason)
    db.session.commit()
    return item


BULK_LIMIT = 1000


def bulk(actor: str, filters: dict[str, Any], action: str, reason: str, expected: int) -> int:
    """Retry or skip every row ``filters`` select, in one transaction with one audit row per
    row. ``expected`` is the count the operator confirmed: a set that changed meanwhile is
    refused rather than acted on unseen."""
    ids = queries.outbox_ids(filters, BULK_LIMIT)
    if len(ids) > BULK_LIMIT:
        raise Problem(
            422,
            f"A bulk action takes at most {BULK_LIMIT} items; narrow the filter.",
            title="Too many items",
        )
    if len(ids) != expected:
        raise Problem(
            409,
            f"The filter now selects {len(ids)} items, not the {expected} confirmed; look again.",
            title="The set changed",
        )
    items = db.session.scalars(
        select(OutboxItem).where(OutboxItem.id.in_(ids)).with_for_update()
    ).all()
    for item in items:
        if action == "retry":
            _retry(actor, item, reason)
        else:
            _skip(actor, item, reason)
    db.session.commit()
    if action == "retry":
        _wake([item.platform_id for item in items])
    return len(items)


@task
def run_reconciliation(platform_id: str) -> str:
    """The job an operator's "reconcile now" queues."""
    return reconcile_platform(platform_id, trigger="operator").state


def reconcile_now(actor: str, platform: Platform) -> str:
    """Queue a reconciliation of ``platform``; returns the job id."""
    if not platform.is_timebank:
        raise Problem(
            409, "A webhook subscription has nothing to reconcile.", title="Cannot reconcile"
        )
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
    return reprocess_event(event.id)


def resolve_difference(actor: str, difference_id: str, reason: str) -> str:
    """Mark a reconciliation difference resolved, saying how; returns its run's id."""
    difference = db.session.get(ReconciliationDifference, difference_id)
    if difference is None:
        raise Problem(404, f"No difference {difference_id}.", title="Not found")
    if difference.resolved_at is not None:
        raise Problem(409, "The difference is already resolved.", title="Already resolved")
    difference.resolved_at = utcnow()
    _audit(
        actor,
        "difference.resolve",
        "difference",
        difference.id,
        reason=reason,
        run_id=difference.run_id,
        difference_minutes=difference.difference_minutes,
    )
    db.session.commit()
    return difference.run_id


def _member(member_id: str) -> Member:
    member = db.session.get(Member, member_id)
    if member is None:
        raise Problem(404, f"No member {member_id}.", title="Not found")
    return member


def disable_member(actor: str, member_id: str, reason: str) -> Member:
    """Stop a member from logging in; every login and token of theirs ends at once."""
    member = _member(member_id)
    if member.status != "active":
        raise Problem(
            409, f"The member is {member.status}; only active members.", title="Cannot disable"
        )
    accounts.disable_member(member)
    _audit(actor, "member.disable", "member", member.id, reason=reason)
    db.session.commit()
    return member


def enable_member(actor: str, member_id: str, reason: str) -> Member:
    """Let a disabled member log in again; what was ended stays ended."""
    member = _member(member_id)
    if member.status != "disabled":
        raise Problem(409, f"The member is {member.status}, not disabled.", title="Cannot enable")
    accounts.enable_member(member)
    _audit(actor, "member.enable", "member", member.id, reason=reason)
    db.session.commit()
    return member

"""What operators look at, computed from the database (the source of truth) and the circuit
state in Redis. The admin API and the admin page call these same functions."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import func, or_, select

from connectors.errors import ConnectorError
from gateway.admin import pagination
from gateway.admin.models import AdminAction
from gateway.callbacks.models import InboxEvent
from gateway.db import db, utcnow
from gateway.federation.models import Consent, Platform, PlatformLink
from gateway.ledger import services as ledger
from gateway.members.models import Member
from gateway.sync.circuit import CircuitBreaker
from gateway.sync.models import (
    OUTBOX_STATES,
    OutboxItem,
    ReconciliationDifference,
    ReconciliationRun,
    SyncAttempt,
)
from gateway.sync.remote import connector_for

SUCCESS_OUTCOMES = ("ok", "conflict")
# A platform whose oldest pending item waited longer than this is behind.
LAG_WARNING_SECONDS = 300


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def circuit_state(platform: Platform) -> str:
    """closed, open, half-open, or unknown when Redis does not answer."""
    try:
        return CircuitBreaker(current_app.extensions["redis"], platform.id).state()
    except RedisError:
        return "unknown"


def _outbox_counts() -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTBOX_STATES, 0))
    rows = db.session.execute(
        select(OutboxItem.platform_id, OutboxItem.state, func.count()).group_by(
            OutboxItem.platform_id, OutboxItem.state
        )
    )
    for platform_id, state, count in rows:
        counts[platform_id][state] = count
    return counts


def _oldest_pending() -> dict[str, datetime]:
    rows = db.session.execute(
        select(OutboxItem.platform_id, func.min(OutboxItem.created_at))
        .where(OutboxItem.state.in_(("pending", "running")))
        .group_by(OutboxItem.platform_id)
    )
    return {platform_id: oldest for platform_id, oldest in rows if oldest is not None}


def _attempts_since(since: datetime) -> dict[str, tuple[int, int]]:
    rows = db.session.execute(
        select(SyncAttempt.platform_id, SyncAttempt.outcome, func.count())
        .where(SyncAttempt.started_at >= since)
        .group_by(SyncAttempt.platform_id, SyncAttempt.outcome)
    )
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for platform_id, outcome, count in rows:
        totals[platform_id][0] += count
        if outcome not in SUCCESS_OUTCOMES:
            totals[platform_id][1] += count
    return {k: (v[0], v[1]) for k, v in totals.items()}


def _last_success() -> dict[str, datetime]:
    rows = db.session.execute(
        select(SyncAttempt.platform_id, func.max(SyncAttempt.started_at))
        .where(SyncAttempt.outcome.in_(SUCCESS_OUTCOMES))
        .group_by(SyncAttempt.platform_id)
    )
    return dict(rows.all())


def _last_run(platform_id: str) -> dict[str, Any] | None:
    run = db.session.scalar(
        select(ReconciliationRun)
        .where(ReconciliationRun.platform_id == platform_id)
        .order_by(ReconciliationRun.started_at.desc())
        .limit(1)
    )
    if run is None:
        return None
    open_differences = db.session.scalar(
        select(func.count())
        .select_from(ReconciliationDifference)
        .where(
            ReconciliationDifference.run_id == run.id,
            ReconciliationDifference.resolved_at.is_(None),
        )
    )
    return {
        "id": run.id,
        "state": run.state,
        "trigger": run.trigger,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "imported": run.imported,
        "resent": run.resent,
        "differences": run.differences,
        "open_differences": open_differences or 0,
        "error": run.error,
    }


def status_of(summary: dict[str, Any]) -> str:
    """One word an operator can act on: ok, degraded, failing, circuit_open or disabled.

    Failing: something gave up (dead items) or the latest attempt failed. Degraded: items are
    waiting for a retry or the oldest pending one is late. The hour's error rate is shown
    beside it, but does not keep a recovered platform red for an hour.
    """
    if not summary["enabled"]:
        return "disabled"
    if summary["circuit"] == "open":
        return "circuit_open"
    if summary["outbox"]["dead"] or summary["last_attempt_failed"]:
        return "failing"
    if summary["retrying"] or summary["sync_lag_seconds"] > LAG_WARNING_SECONDS:
        return "degraded"
    return "ok"


def _last_attempt_failed(platform_id: str) -> bool:
    outcome = db.session.scalar(
        select(SyncAttempt.outcome)
        .where(SyncAttempt.platform_id == platform_id)
        .order_by(SyncAttempt.started_at.desc())
        .limit(1)
    )
    return outcome is not None and outcome not in SUCCESS_OUTCOMES


def _retrying() -> dict[str, int]:
    rows = db.session.execute(
        select(OutboxItem.platform_id, func.count())
        .where(OutboxItem.state.in_(("pending", "running")), OutboxItem.attempts > 0)
        .group_by(OutboxItem.platform_id)
    )
    return dict(rows.all())


def platforms_overview() -> list[dict[str, Any]]:
    """Every platform's health, in one pass over each table."""
    now = utcnow()
    counts = _outbox_counts()
    oldest = _oldest_pending()
    attempts = _attempts_since(now - timedelta(hours=1))
    successes = _last_success()
    retrying = _retrying()
    result = []
    for platform in db.session.scalars(select(Platform).order_by(Platform.name)):
        total, failed = attempts.get(platform.id, (0, 0))
        summary = {
            "name": platform.name,
            "display_name": platform.display_name or platform.name,
            "connector": platform.connector,
            "enabled": platform.enabled,
            "circuit": circuit_state(platform),
            "outbox": counts.get(platform.id, dict.fromkeys(OUTBOX_STATES, 0)),
            "sync_lag_seconds": int((now - oldest[platform.id]).total_seconds())
            if platform.id in oldest
            else 0,
            "last_success_at": _iso(successes.get(platform.id)),
            "attempts_last_hour": total,
            "failures_last_hour": failed,
            "error_rate_last_hour": round(failed / total, 3) if total else 0.0,
            "retrying": retrying.get(platform.id, 0),
            "last_attempt_failed": _last_attempt_failed(platform.id),
            "last_reconciliation": _last_run(platform.id),
        }
        summary["status"] = status_of(summary)
        result.append(summary)
    return result


def platform_by_name(name: str) -> Platform | None:
    """The platform called ``name``."""
    return db.session.scalar(select(Platform).where(Platform.name == name))


def outbox_item(row: OutboxItem, platform_names: dict[str, str]) -> dict[str, Any]:
    """An outbox row as operators see it."""
    return {
        "id": row.id,
        "platform": platform_names.get(row.platform_id, row.platform_id),
        "kind": row.kind,
        "state": row.state,
        "member_id": row.member_id,
        "transaction_id": row.transaction_id,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "last_error_code": row.last_error_code,
        "skipped_reason": row.skipped_reason,
        "next_attempt_at": _iso(row.next_attempt_at),
        "created_at": _iso(row.created_at),
        "completed_at": _iso(row.completed_at),
    }


def _platform_names() -> dict[str, str]:
    return dict(db.session.execute(select(Platform.id, Platform.name)).all())


def outbox_page(
    state: str | None, platform: str | None, kind: str | None, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Outbox rows, newest first, filtered."""
    query = select(OutboxItem)
    if state:
        query = query.where(OutboxItem.state == state)
    if kind:
        query = query.where(OutboxItem.kind == kind)
    if platform:
        found = platform_by_name(platform)
        query = query.where(OutboxItem.platform_id == (found.id if found else ""))
    rows, next_cursor = pagination.page(query, OutboxItem.created_at, OutboxItem.id, cursor, limit)
    names = _platform_names()
    return [outbox_item(r, names) for r in rows], next_cursor


def outbox_detail(item_id: str) -> dict[str, Any] | None:
    """One outbox row with every attempt at it, newest first."""
    row = db.session.get(OutboxItem, item_id)
    if row is None:
        return None
    attempts = db.session.scalars(
        select(SyncAttempt)
        .where(SyncAttempt.outbox_id == item_id)
        .order_by(SyncAttempt.started_at.desc())
        .limit(100)
    )
    detail = outbox_item(row, _platform_names())
    detail["attempt_log"] = [
        {
            "started_at": _iso(a.started_at),
            "duration_ms": a.duration_ms,
            "outcome": a.outcome,
            "error": a.error,
            "error_code": a.error_code,
        }
        for a in attempts
    ]
    return detail


def callbacks_page(
    state: str | None, platform: str | None, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Callback events (parked ones by default), newest first."""
    query = select(InboxEvent)
    if state:
        query = query.where(InboxEvent.state == state)
    if platform:
        found = platform_by_name(platform)
        query = query.where(InboxEvent.platform_id == (found.id if found else ""))

    rows, next_cursor = pagination.page(query, InboxEvent.received_at, InboxEvent.id, cursor, limit)
    names = _platform_names()
    return [
        {
            "id": r.id,
            "platform": names.get(r.platform_id, r.platform_id),
            "webhook_id": r.webhook_id,
            "event_type": r.event_type,
            "state": r.state,
            "attempts": r.attempts,
            "parked_reason": r.parked_reason,
            "received_at": _iso(r.received_at),
        }
        for r in rows
    ], next_cursor


def audit_page(
    action: str | None, actor: str | None, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """The audit log, newest first."""
    query = select(AdminAction)
    if action:
        query = query.where(AdminAction.action == action)
    if actor:
        query = query.where(AdminAction.actor == actor)
    rows, next_cursor = pagination.page(
        query, AdminAction.created_at, AdminAction.id, cursor, limit
    )
    return [
        {
            "id": r.id,
            "actor": r.actor,
            "action": r.action,
            "target_type": r.target_type,
            "target_id": r.target_id,
            "reason": r.reason,
            "details": r.details,
            "created_at": _iso(r.created_at),
        }
        for r in rows
    ], next_cursor


def _remote_balance(platform: Platform, wallet_id: str | None) -> dict[str, Any]:
    if not wallet_id:
        return {"minutes": None, "error": None}
    try:
        balance = connector_for(platform).get_balance(wallet_id)
    except ConnectorError as exc:
        return {"minutes": None, "error": f"{type(exc).__name__}: {exc}"}
    return {"minutes": balance.minutes, "error": None}


def member_lookup(q: str) -> list[dict[str, Any]]:
    """Members whose id or email is ``q`` (or whose email starts with it): links, consents, and
    the local balance beside each platform's live remote balance."""
    q = q.strip()
    members = db.session.scalars(
        select(Member)
        .where(or_(Member.id == q, Member.email == q.lower(), Member.email.startswith(q.lower())))
        .order_by(Member.email)
        .limit(20)
    ).all()
    names = {p.id: p for p in db.session.scalars(select(Platform))}
    found = []
    for member in members:
        account = ledger.find_member_account(member.id)
        links = db.session.scalars(select(PlatformLink).where(PlatformLink.member_id == member.id))
        consents = db.session.scalars(select(Consent).where(Consent.member_id == member.id))
        found.append(
            {
                "id": member.id,
                "email": member.email,
                "display_name": member.display_name,
                "status": member.status,
                "is_admin": member.is_admin,
                "local_balance_minutes": account.balance_minutes if account else 0,
                "links": [
                    {
                        "platform": names[link.platform_id].name,
                        "state": link.state,
                        "linked_via": link.linked_via,
                        "remote_member_id": link.remote_member_id,
                        "remote_wallet_id": link.remote_wallet_id,
                        "remote_balance": _remote_balance(
                            names[link.platform_id], link.remote_wallet_id
                        )
                        if link.state == "active"
                        else None,
                    }
                    for link in links
                ],
                "consents": [
                    {
                        "platform": names[c.platform_id].name,
                        "fields": c.fields,
                        "text_version": c.text_version,
                        "granted_at": _iso(c.granted_at),
                        "withdrawn_at": _iso(c.withdrawn_at),
                    }
                    for c in consents
                ],
            }
        )
    return found


def activity(hours: int = 24, platform: str | None = None) -> list[dict[str, Any]]:
    """Per hour: deliveries that succeeded and failed, and the sync lag of what completed
    (longest wait from an item's creation to its completion, in seconds)."""
    now = utcnow().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    since = now - timedelta(hours=hours)
    buckets = {
        since + timedelta(hours=h): {"succeeded": 0, "failed": 0, "lag_seconds": 0}
        for h in range(hours)
    }
    platform_id = None
    if platform:
        found = platform_by_name(platform)
        platform_id = found.id if found else ""

    def bucket(moment: datetime) -> dict[str, int] | None:
        return buckets.get(moment.replace(minute=0, second=0, microsecond=0))

    attempts = select(SyncAttempt.started_at, SyncAttempt.outcome).where(
        SyncAttempt.started_at >= since
    )
    done = select(OutboxItem.created_at, OutboxItem.completed_at).where(
        OutboxItem.completed_at >= since, OutboxItem.state == "succeeded"
    )
    if platform_id is not None:
        attempts = attempts.where(SyncAttempt.platform_id == platform_id)
        done = done.where(OutboxItem.platform_id == platform_id)
    for started_at, outcome in db.session.execute(attempts).yield_per(1000):
        slot = bucket(started_at)
        if slot is not None:
            slot["succeeded" if outcome in SUCCESS_OUTCOMES else "failed"] += 1
    for created_at, completed_at in db.session.execute(done).yield_per(1000):
        slot = bucket(completed_at)
        if slot is not None:
            wait = int((completed_at - created_at).total_seconds())
            slot["lag_seconds"] = max(slot["lag_seconds"], wait)
    return [{"hour": _iso(hour), **values} for hour, values in sorted(buckets.items())]

"""What operators look at, computed from the database (the source of truth) and the circuit
state in Redis. The admin API and the admin page call these same functions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from redis.exceptions import RedisError
from rq import Worker
from sqlalchemy import Select, and_, case, func, literal, or_, select

from connectors.errors import ConnectorError
from gateway.admin import pagination
from gateway.admin.models import AdminAction
from gateway.auth.models import OAuthClient
from gateway.callbacks.models import InboxEvent
from gateway.callbacks.signature import SignatureError, verify
from gateway.db import db, utcnow
from gateway.federation.models import Consent, Platform, PlatformLink
from gateway.federation.platforms import callback_platform
from gateway.ledger import services as ledger
from gateway.ledger.models import Account, Transaction
from gateway.members.models import Member
from gateway.observability.work_state import WorkStateCollector
from gateway.sync.circuit import CircuitBreaker
from gateway.sync.models import (
    OUTBOX_STATES,
    OutboxItem,
    ReconciliationDifference,
    ReconciliationRun,
    SyncAttempt,
)
from gateway.sync.remote import connector_for
from schemas.vocabulary import INBOX_STATES

SUCCESS_OUTCOMES = ("ok", "conflict")
# A throttled attempt (429) spends nothing and is no failure of the delivery.
NOT_FAILURES = (*SUCCESS_OUTCOMES, "throttled")
OUTBOX_TAB_ORDER = ("failing", "dead", "pending", "succeeded", "skipped")
TAB_COUNT_CAP = 1000
ATTEMPT_LOG_LIMIT = 200
MEMBER_LIST_LIMIT = 50
# A platform whose oldest pending item waited longer than this is behind.
LAG_WARNING_SECONDS = 300
# Above this share of failed attempts in the last hour a platform is not called "in sync".
HIGH_ERROR_RATE = 0.1
# The scheduler ticks every minute (a heartbeat job); three missed ticks is silence.
SCHEDULER_SILENT = timedelta(minutes=3)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def circuit_state(platform: Platform) -> str:
    """closed, open, half-open, or unknown when Redis does not answer."""
    try:
        return CircuitBreaker(current_app.extensions["redis"], platform.id).state()
    except RedisError:
        return "unknown"


def _count(query: Select) -> int:
    return db.session.scalar(select(func.count()).select_from(query.subquery())) or 0


def status_of(summary: dict[str, Any]) -> str:
    """One word an operator can act on, the most urgent first: disabled, circuit_open,
    failing, degraded, differences, recovering or ok.

    Failing: something gave up (dead items) or the latest attempt failed. Degraded: items are
    waiting for a retry or the oldest pending one is late. Differences: the last
    reconciliation left some open. Recovering: deliveries work again but many attempts of the
    last hour failed. "ok" (in sync) is none of these: never beside open differences or a
    high error rate.
    """
    if not summary["enabled"]:
        return "disabled"
    if summary["circuit"] == "open":
        return "circuit_open"
    if summary["outbox"]["dead"] or summary["last_attempt_failed"]:
        return "failing"
    if summary["retrying"] or summary["sync_lag_seconds"] > LAG_WARNING_SECONDS:
        return "degraded"
    last_run = summary["last_reconciliation"]
    if last_run and (last_run["open_differences"] or last_run["state"] in ("failed", "partial")):
        return "differences"
    if summary["error_rate_last_hour"] >= HIGH_ERROR_RATE:
        return "recovering"
    return "ok"


# Counted exactly: the work in hand, which the overview adds and subtracts. The history
# states (succeeded, dead, skipped) grow for ever and are counted up to TAB_COUNT_CAP, as
# the outbox tabs count them; /metrics has the exact figures.
LIVE_STATES = ("pending", "running")
HISTORY_STATES = tuple(s for s in OUTBOX_STATES if s not in LIVE_STATES)


def _platform_figures(since: datetime) -> Select:
    """Every platform with its health figures, in one statement: each figure a subquery
    correlated to the platform, each answered from an index (a count of the waiting rows,
    a capped count, the newest attempt, the oldest waiting row). Asked one by one, the same
    figures were four statements per platform and three aggregates over every platform's
    history."""
    mine = OutboxItem.platform_id == Platform.id
    attempted = SyncAttempt.platform_id == Platform.id
    recent = and_(attempted, SyncAttempt.started_at >= since)

    def count(table: Any, *conditions: Any) -> Any:
        return select(func.count()).select_from(table).where(*conditions).scalar_subquery()

    def capped(state: str) -> Any:
        rows = (
            select(OutboxItem.id)
            .where(mine, OutboxItem.state == _inline(state))
            .limit(TAB_COUNT_CAP)
            .correlate(Platform)
        )
        return select(func.count()).select_from(rows.subquery()).scalar_subquery()

    figures = {
        **{
            state: count(OutboxItem, mine, OutboxItem.state == _inline(state))
            for state in LIVE_STATES
        },
        **{state: capped(state) for state in HISTORY_STATES},
        "retrying": count(OutboxItem, mine, WAITING, OutboxItem.attempts > 0),
        "oldest_waiting": select(func.min(OutboxItem.created_at))
        .where(mine, WAITING)
        .scalar_subquery(),
        "attempts_last_hour": count(SyncAttempt, recent),
        "failures_last_hour": count(
            SyncAttempt, recent, SyncAttempt.outcome.not_in(SUCCESS_OUTCOMES)
        ),
        "last_success_at": select(func.max(SyncAttempt.started_at))
        .where(attempted, SyncAttempt.outcome.in_(SUCCESS_OUTCOMES))
        .scalar_subquery(),
        # Per platform, so that the (platform_id, started_at) index answers from its newest end.
        "last_outcome": select(SyncAttempt.outcome)
        .where(attempted)
        .order_by(SyncAttempt.started_at.desc())
        .limit(1)
        .scalar_subquery(),
        "last_run_id": select(ReconciliationRun.id)
        .where(ReconciliationRun.platform_id == Platform.id)
        .order_by(ReconciliationRun.started_at.desc())
        .limit(1)
        .scalar_subquery(),
    }
    return select(Platform, *(f.label(name) for name, f in figures.items())).order_by(Platform.name)


def _runs(run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """These reconciliation runs, each with its open differences counted."""
    open_differences = (
        select(func.count())
        .select_from(ReconciliationDifference)
        .where(
            ReconciliationDifference.run_id == ReconciliationRun.id,
            ReconciliationDifference.resolved_at.is_(None),
        )
        .scalar_subquery()
    )
    rows = db.session.execute(
        select(ReconciliationRun, open_differences).where(ReconciliationRun.id.in_(run_ids))
    )
    return {
        run.id: {
            "id": run.id,
            "state": run.state,
            "trigger": run.trigger,
            "started_at": _iso(run.started_at),
            "finished_at": _iso(run.finished_at),
            "imported": run.imported,
            "resent": run.resent,
            "differences": run.differences,
            "open_differences": open_count or 0,
            "error": run.error,
        }
        for run, open_count in rows
    }


def platforms_overview() -> list[dict[str, Any]]:
    """Every platform's health: two statements, whatever the number of platforms."""
    now = utcnow()
    rows = db.session.execute(_platform_figures(now - timedelta(hours=1))).all()
    runs = _runs([row.last_run_id for row in rows if row.last_run_id])
    result = []
    for row in rows:
        platform = row.Platform
        oldest = _as_utc(row.oldest_waiting)
        total, failed = row.attempts_last_hour, row.failures_last_hour
        summary = {
            "name": platform.name,
            "display_name": platform.display_name or platform.name,
            "connector": platform.connector,
            # False for a webhook subscription's delivery: nothing there to reconcile.
            "is_timebank": platform.is_timebank,
            "enabled": platform.enabled,
            "circuit": circuit_state(platform),
            "outbox": {state: getattr(row, state) for state in OUTBOX_STATES},
            "outbox_succeeded_capped_at": TAB_COUNT_CAP,
            "outbox_capped_at": TAB_COUNT_CAP,
            "outbox_capped_states": list(HISTORY_STATES),
            "sync_lag_seconds": int((now - oldest).total_seconds()) if oldest else 0,
            "last_success_at": _iso(_as_utc(row.last_success_at)),
            "attempts_last_hour": total,
            "failures_last_hour": failed,
            "error_rate_last_hour": round(failed / total, 3) if total else 0.0,
            "retrying": row.retrying,
            "last_attempt_failed": row.last_outcome is not None
            and row.last_outcome not in SUCCESS_OUTCOMES,
            "last_reconciliation": runs.get(row.last_run_id),
        }
        summary["status"] = status_of(summary)
        result.append(summary)
    return result


def last_failure(platform_id: str) -> dict[str, Any] | None:
    """The platform's newest failed attempt (when, its error), answered from the
    (platform_id, started_at) index."""
    attempt = db.session.scalar(
        select(SyncAttempt)
        .where(SyncAttempt.platform_id == platform_id, SyncAttempt.outcome.not_in(NOT_FAILURES))
        .order_by(SyncAttempt.started_at.desc())
        .limit(1)
    )
    if attempt is None:
        return None
    return {
        "at": _iso(attempt.started_at),
        "error": attempt.error,
        "error_code": attempt.error_code,
        "outcome": attempt.outcome,
    }


def delivery_health(platforms: list[Platform]) -> dict[str, dict[str, Any]]:
    """By platform id: the outbox tab counts an operator would see filtered on it, its
    overview status and last success, and its newest failure."""
    overview = {p["name"]: p for p in platforms_overview()} if platforms else {}
    health = {}
    for platform in platforms:
        summary = overview.get(platform.name, {})
        health[platform.id] = {
            "counts": outbox_tab_counts({"platform": platform.name}),
            "cap": TAB_COUNT_CAP,
            "status": summary.get("status", "ok"),
            "last_success_at": summary.get("last_success_at"),
            "last_failure": last_failure(platform.id),
        }
    return health


def platform_names() -> list[dict[str, str]]:
    """Every platform's name, for filters."""
    return [{"name": n} for n in db.session.scalars(select(Platform.name).order_by(Platform.name))]


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
        "tab": tab_of(row.state, row.attempts),
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


def tab_of(state: str, attempts: int) -> str:
    """The tab an item sits in: waiting items that already failed are "failing"."""
    if state in ("pending", "running"):
        return "failing" if attempts > 0 else "pending"
    return state


def _inline(value: Any) -> Any:
    """A constant written into the SQL rather than bound as a parameter.

    For the conditions that pick a partial index (``gateway.admin.models``): the planner
    uses one only when it can prove the query's condition implies the index's, which it
    cannot from parameters, and a prepared statement's generic plan has nothing else."""
    return literal(value, literal_execute=True)


# The partial indexes' predicates, as the queries state them.
WAITING = OutboxItem.state.in_([_inline(s) for s in ("pending", "running")])
FAILED_ATTEMPT = SyncAttempt.outcome.not_in([_inline(o) for o in NOT_FAILURES])


def _tab_condition(tab: str) -> Any:
    if tab == "failing":
        return and_(WAITING, OutboxItem.attempts > 0)
    if tab == "pending":
        return and_(WAITING, OutboxItem.attempts == 0)
    return OutboxItem.state == _inline(tab)


def _filter_conditions(filters: dict[str, Any], *, with_tab: bool = True) -> list[Any]:
    conditions = []
    if with_tab and filters.get("tab") and filters["tab"] != "all":
        conditions.append(_tab_condition(filters["tab"]))
    if filters.get("state"):
        conditions.append(OutboxItem.state == _inline(filters["state"]))
    if filters.get("kind"):
        conditions.append(OutboxItem.kind == filters["kind"])
    if filters.get("member"):
        conditions.append(OutboxItem.member_id == filters["member"])
    if filters.get("platform"):
        found = platform_by_name(filters["platform"])
        conditions.append(OutboxItem.platform_id == (found.id if found else ""))
    return conditions


def _filtered(query: Select, filters: dict[str, Any]) -> Select:
    return query.where(*_filter_conditions(filters))


def _capped_count(*conditions: Any) -> Any:
    """The outbox rows matching ``conditions``, counted up to TAB_COUNT_CAP, as a subquery."""
    rows = select(OutboxItem.id).where(*conditions).limit(TAB_COUNT_CAP)
    return select(func.count()).select_from(rows.subquery()).scalar_subquery()


def outbox_tab_counts(filters: dict[str, Any]) -> dict[str, int]:
    """How many rows each tab holds under the other filters, counted up to TAB_COUNT_CAP
    (a tab of a million successes needs no exact figure, and counting it all is slow).
    One statement for every tab."""
    others = _filter_conditions(filters, with_tab=False)
    counts = db.session.execute(
        select(*(_capped_count(*others, _tab_condition(tab)) for tab in OUTBOX_TAB_ORDER))
    ).one()
    return dict(zip(OUTBOX_TAB_ORDER, counts, strict=True))


def outbox_page(
    filters: dict[str, Any], cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Outbox rows, newest first, filtered."""
    query = _filtered(select(OutboxItem), filters)
    rows, next_cursor = pagination.page(query, OutboxItem.created_at, OutboxItem.id, cursor, limit)
    names = _platform_names()
    return [outbox_item(r, names) for r in rows], next_cursor


def outbox_ids(filters: dict[str, Any], limit: int) -> list[str]:
    """The ids a bulk action on ``filters`` would touch (at most ``limit`` + 1, so the caller
    can tell a set that is too big)."""
    query = _filtered(select(OutboxItem.id), filters).order_by(OutboxItem.created_at)
    return list(db.session.scalars(query.limit(limit + 1)))


def _transaction(transaction_id: str | None) -> dict[str, Any] | None:
    if not transaction_id:
        return None
    tx = db.session.get(Transaction, transaction_id)
    if tx is None:
        return {"id": transaction_id, "missing": True}
    owners = dict(
        db.session.execute(
            select(Account.id, Account.member_id).where(
                Account.id.in_([e.account_id for e in tx.entries])
            )
        ).all()
    )
    return {
        "id": tx.id,
        "missing": False,
        "kind": tx.kind,
        "description": tx.description,
        "occurred_at": _iso(tx.occurred_at),
        "reversal_of": tx.reversal_of,
        "entries": [
            {"member_id": owners.get(e.account_id), "amount_minutes": e.amount_minutes}
            for e in tx.entries
        ],
    }


def _member_brief(member_id: str | None) -> dict[str, Any] | None:
    if not member_id:
        return None
    member = db.session.get(Member, member_id)
    if member is None:
        return {"id": member_id, "display_name": None, "email": None}
    return {"id": member.id, "display_name": member.display_name, "email": member.email}


def outbox_detail(item_id: str) -> dict[str, Any] | None:
    """One outbox row with its payload, member, local transaction, every attempt at it and
    every operator action on it, newest first. Attempts are never deleted: a retry starts a
    new round of the row's attempt budget, and the history keeps the earlier rounds."""
    row = db.session.get(OutboxItem, item_id)
    if row is None:
        return None
    attempts = db.session.scalars(
        select(SyncAttempt)
        .where(SyncAttempt.outbox_id == item_id)
        .order_by(SyncAttempt.started_at.desc())
        .limit(ATTEMPT_LOG_LIMIT)
    )
    detail = outbox_item(row, _platform_names())
    detail["attempts_total"] = db.session.scalar(
        select(func.count()).select_from(SyncAttempt).where(SyncAttempt.outbox_id == item_id)
    )
    detail["payload"] = row.payload
    detail["result"] = row.result
    detail["depends_on_id"] = row.depends_on_id
    detail["member"] = _member_brief(row.member_id)
    detail["transaction"] = _transaction(row.transaction_id)
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
    detail["actions"] = [
        _audit_row(a, _actor_names([a.actor]))
        for a in db.session.scalars(
            select(AdminAction)
            .where(AdminAction.target_type == "outbox", AdminAction.target_id == item_id)
            .order_by(AdminAction.created_at.desc())
            .limit(ATTEMPT_LOG_LIMIT)
        )
    ]
    return detail


def _callback_row(r: InboxEvent, names: dict[str, str]) -> dict[str, Any]:
    return {
        "id": r.id,
        "platform": names.get(r.platform_id, r.platform_id),
        "webhook_id": r.webhook_id,
        "event_type": r.event_type,
        "state": r.state,
        "attempts": r.attempts,
        "parked_reason": r.parked_reason,
        "received_at": _iso(r.received_at),
        "processed_at": _iso(r.processed_at),
        "transaction_id": r.transaction_id,
    }


def callbacks_page(
    filters: dict[str, Any], cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Callback events of every state (or the one asked for), newest first."""
    query = select(InboxEvent)
    if filters.get("state"):
        query = query.where(InboxEvent.state == filters["state"])
    if filters.get("event_type"):
        query = query.where(InboxEvent.event_type == filters["event_type"])
    if filters.get("platform"):
        found = platform_by_name(filters["platform"])
        query = query.where(InboxEvent.platform_id == (found.id if found else ""))
    rows, next_cursor = pagination.page(query, InboxEvent.received_at, InboxEvent.id, cursor, limit)
    names = _platform_names()
    return [_callback_row(r, names) for r in rows], next_cursor


def callback_state_counts() -> dict[str, int]:
    """Events per state, each counted up to TAB_COUNT_CAP."""
    counts = {}
    for state in INBOX_STATES:
        capped = select(InboxEvent.id).where(InboxEvent.state == state).limit(TAB_COUNT_CAP)
        counts[state] = _count(capped)
    return counts


def signature_verdict(event: InboxEvent) -> str:
    """Whether the stored headers and body still verify against the platform's secrets.

    Every stored event passed the check when it arrived (nothing unsigned is stored); this
    says whether it still would, setting the 5-minute clock aside: "valid", "rotated" (no
    current secret signs it: the secret changed since), "no_secret" (the platform is gone
    or disabled), or "missing" (no signature was kept with it)."""
    if not event.headers.get("webhook-signature"):
        return "missing"
    platform = db.session.get(Platform, event.platform_id)
    known = callback_platform(platform.name) if platform else None
    if known is None:
        return "no_secret"
    try:
        stamp = float(event.headers.get("webhook-timestamp", "0"))
        verify(event.headers, event.body.encode("utf-8"), known.secrets, now=stamp)
    except (SignatureError, ValueError):
        return "rotated"
    return "valid"


def callback_detail(event_id: str) -> dict[str, Any] | None:
    """One callback event with its payload and signature verdict."""
    event = db.session.get(InboxEvent, event_id)
    if event is None:
        return None
    detail = _callback_row(event, _platform_names())
    try:
        detail["payload"] = json.loads(event.body)
    except ValueError:
        detail["payload"] = event.body
    detail["headers"] = {k: v for k, v in event.headers.items() if k != "webhook-signature"}
    detail["signature"] = signature_verdict(event)
    return detail


def work_state() -> dict[str, Any]:
    """Workers, queue depth, the scheduler's last tick and Redis memory: what carries the work.

    The figures are the ones /metrics exports (the same collector reads them); the worker
    list adds what each one runs now."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    state: dict[str, Any] = {
        "redis_ok": False,
        "workers": [],
        "workers_alive": 0,
        "queue": app.extensions["queue"].name,
        "queue_depth": None,
        "scheduler_last_tick": None,
        "scheduler_late": True,
        "redis_memory_bytes": None,
        "redis_max_memory_bytes": None,
    }
    for family in WorkStateCollector(app).collect():
        for sample in family.samples:
            if sample.name == "gateway_redis_scrape_ok":
                state["redis_ok"] = bool(sample.value)
            elif sample.name == "gateway_workers":
                state["workers_alive"] = int(sample.value)
            elif sample.name == "gateway_queue_jobs":
                state["queue_depth"] = int(sample.value)
            elif sample.name == "gateway_scheduler_heartbeat_timestamp_seconds":
                tick = datetime.fromtimestamp(sample.value, tz=UTC)
                state["scheduler_last_tick"] = tick.isoformat()
                state["scheduler_late"] = utcnow() - tick > SCHEDULER_SILENT
    if not state["redis_ok"]:
        return state
    connection = app.extensions["redis"]
    try:
        memory = connection.info("memory")
        state["redis_memory_bytes"] = memory.get("used_memory")
        state["redis_max_memory_bytes"] = memory.get("maxmemory") or None
        for worker in Worker.all(queue=app.extensions["queue"]):
            job = worker.get_current_job()
            state["workers"].append(
                {
                    "name": worker.name,
                    "state": worker.get_state(),
                    "pid": worker.pid,
                    "hostname": worker.hostname,
                    "current_job": job.func_name if job else None,
                    "last_heartbeat": _iso(worker.last_heartbeat),
                    "successful_jobs": worker.successful_job_count,
                    "failed_jobs": worker.failed_job_count,
                }
            )
    except RedisError:
        state["redis_ok"] = False
    return state


def _run_row(run: ReconciliationRun, names: dict[str, str], open_count: int) -> dict[str, Any]:
    return {
        "id": run.id,
        "platform": names.get(run.platform_id, run.platform_id),
        "state": run.state,
        "trigger": run.trigger,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "wallets_checked": run.wallets_checked,
        "transfers_seen": run.transfers_seen,
        "imported": run.imported,
        "revived": run.resent,
        "differences": run.differences,
        "open_differences": open_count,
        "error": run.error,
    }


def runs_page(
    platform: str | None, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Reconciliation runs, newest first, with their figures."""
    query = select(ReconciliationRun)
    if platform:
        found = platform_by_name(platform)
        query = query.where(ReconciliationRun.platform_id == (found.id if found else ""))
    rows, next_cursor = pagination.page(
        query, ReconciliationRun.started_at, ReconciliationRun.id, cursor, limit
    )
    open_counts = dict(
        db.session.execute(
            select(ReconciliationDifference.run_id, func.count())
            .where(
                ReconciliationDifference.run_id.in_([r.id for r in rows]),
                ReconciliationDifference.resolved_at.is_(None),
            )
            .group_by(ReconciliationDifference.run_id)
        ).all()
    )
    names = _platform_names()
    return [_run_row(r, names, open_counts.get(r.id, 0)) for r in rows], next_cursor


# What resolves each kind of difference, in the order an operator would try.
RESOLUTIONS = {
    "outbound_pending": ("outbox", "member", "resolve"),
    "inbound_not_imported": ("callbacks", "reconcile", "member", "resolve"),
    "not_mirrored": ("outbox", "member", "reconcile", "resolve"),
    "unexplained": ("member", "reconcile", "resolve"),
}


def run_detail(run_id: str) -> dict[str, Any] | None:
    """One run with every difference it found, each with its explanation and resolutions."""
    run = db.session.get(ReconciliationRun, run_id)
    if run is None:
        return None
    differences = db.session.scalars(
        select(ReconciliationDifference)
        .where(ReconciliationDifference.run_id == run_id)
        .order_by(ReconciliationDifference.resolved_at.is_not(None), ReconciliationDifference.id)
        .limit(500)
    ).all()
    members = {
        m.id: m
        for m in db.session.scalars(
            select(Member).where(Member.id.in_({d.member_id for d in differences if d.member_id}))
        )
    }
    open_count = sum(1 for d in differences if d.resolved_at is None)
    detail = _run_row(run, _platform_names(), open_count)
    detail["difference_list"] = [
        {
            "id": d.id,
            "member_id": d.member_id,
            "member_name": members[d.member_id].display_name if d.member_id in members else None,
            "remote_wallet_id": d.remote_wallet_id,
            "local_minutes": d.local_minutes,
            "expected_remote_minutes": d.expected_remote_minutes,
            "remote_minutes": d.remote_minutes,
            "difference_minutes": d.difference_minutes,
            "pending_outbound_minutes": d.pending_outbound_minutes,
            "pending_inbound_minutes": d.pending_inbound_minutes,
            "explanation": d.explanation,
            "resolutions": list(RESOLUTIONS.get(d.explanation, ("resolve",))),
            "resolved_at": _iso(d.resolved_at),
        }
        for d in differences
    ]
    return detail


def member_search(q: str, limit: int = 50) -> list[dict[str, Any]]:
    """Members whose name, email or id contains ``q`` (any part, any case), by name.

    The first ``limit`` matches are sorted here rather than in SQL: without an ORDER BY a
    common word stops the scan after ``limit`` rows instead of sorting every match."""
    pattern = f"%{q.strip().lower()}%"
    found = db.session.scalars(
        select(Member)
        .where(
            or_(
                # ILIKE rather than lower(): PostgreSQL's trigram index answers it.
                Member.display_name.ilike(pattern),
                Member.email.like(pattern),
                Member.id.like(pattern),
            )
        )
        .limit(limit)
    )
    rows = sorted(found, key=lambda m: (m.display_name.lower(), m.id))
    return [
        {
            "id": m.id,
            "email": m.email,
            "display_name": m.display_name,
            "status": m.status,
            "is_admin": m.is_admin,
        }
        for m in rows
    ]


def _actor_names(actors: list[str]) -> dict[str, str]:
    """``member:<id>`` and ``client:<id>`` audit names to what a person recognises."""
    member_ids = {a.split(":", 1)[1] for a in actors if a.startswith("member:")}
    client_ids = {a.split(":", 1)[1] for a in actors if a.startswith("client:")}
    names: dict[str, str] = {}
    if member_ids:
        for member_id, name, email in db.session.execute(
            select(Member.id, Member.display_name, Member.email).where(Member.id.in_(member_ids))
        ):
            names[f"member:{member_id}"] = f"{name} <{email}>"
    if client_ids:
        for client_id, name in db.session.execute(
            select(OAuthClient.client_id, OAuthClient.name).where(
                OAuthClient.client_id.in_(client_ids)
            )
        ):
            names[f"client:{client_id}"] = name or client_id
    return names


def _audit_row(row: AdminAction, names: dict[str, str]) -> dict[str, Any]:
    return {
        "id": row.id,
        "actor": row.actor,
        "actor_name": names.get(row.actor, row.actor),
        "action": row.action,
        "target_type": row.target_type,
        "target_id": row.target_id,
        "reason": row.reason,
        "details": row.details,
        "created_at": _iso(row.created_at),
    }


def audit_page(
    action: str | None, actor: str | None, target: str | None, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """The audit log, newest first, with each operator's name."""
    query = select(AdminAction)
    if action:
        query = query.where(AdminAction.action == action)
    if actor:
        query = query.where(AdminAction.actor == actor)
    if target:
        query = query.where(AdminAction.target_id == target)
    rows, next_cursor = pagination.page(
        query, AdminAction.created_at, AdminAction.id, cursor, limit
    )
    names = _actor_names([r.actor for r in rows])
    return [_audit_row(r, names) for r in rows], next_cursor


def audit_filters() -> dict[str, list[Any]]:
    """The actions and operators the audit log can be filtered by."""
    actions = list(db.session.scalars(select(AdminAction.action).distinct().order_by("action")))
    actors = list(db.session.scalars(select(AdminAction.actor).distinct().limit(200)))
    names = _actor_names(actors)
    return {
        "actions": actions,
        "actors": sorted(((a, names.get(a, a)) for a in actors), key=lambda pair: pair[1]),
    }


def _remote_balance(platform: Platform, wallet_id: str | None) -> dict[str, Any]:
    if not wallet_id:
        return {"minutes": None, "error": None}
    try:
        balance = connector_for(platform).get_balance(wallet_id)
    except ConnectorError as exc:
        return {"minutes": None, "error": f"{type(exc).__name__}: {exc}"}
    return {"minutes": balance.minutes, "error": None}


def member_detail(member_id: str) -> dict[str, Any] | None:
    """One member: links, consents, the local balance beside each platform's live remote
    balance (flagged when they differ), recent postings and outbox items."""
    member = db.session.get(Member, member_id)
    if member is None:
        return None
    account = ledger.find_member_account(member.id)
    local = account.balance_minutes if account else 0
    platforms = {p.id: p for p in db.session.scalars(select(Platform))}
    links = []
    for link in db.session.scalars(select(PlatformLink).where(PlatformLink.member_id == member.id)):
        remote = (
            _remote_balance(platforms[link.platform_id], link.remote_wallet_id)
            if link.state == "active"
            else None
        )
        links.append(
            {
                "platform": platforms[link.platform_id].name,
                "state": link.state,
                "linked_via": link.linked_via,
                "remote_member_id": link.remote_member_id,
                "remote_wallet_id": link.remote_wallet_id,
                "remote_balance": remote,
                "balance_differs": bool(
                    remote and remote["minutes"] is not None and remote["minutes"] != local
                ),
            }
        )
    postings = ledger.statement(account.id, limit=MEMBER_LIST_LIMIT)[0] if account else []
    outbox = db.session.scalars(
        select(OutboxItem)
        .where(OutboxItem.member_id == member.id)
        .order_by(OutboxItem.created_at.desc(), OutboxItem.id.desc())
        .limit(MEMBER_LIST_LIMIT)
    )
    names = {pid: p.name for pid, p in platforms.items()}
    return {
        "id": member.id,
        "email": member.email,
        "display_name": member.display_name,
        "status": member.status,
        "is_admin": member.is_admin,
        "locale": member.locale,
        "created_at": _iso(member.created_at),
        "local_balance_minutes": local,
        "links": links,
        "consents": [
            {
                "platform": names[c.platform_id],
                "fields": c.fields,
                "text_version": c.text_version,
                "granted_at": _iso(c.granted_at),
                "withdrawn_at": _iso(c.withdrawn_at),
            }
            for c in db.session.scalars(select(Consent).where(Consent.member_id == member.id))
        ],
        "postings": [
            {
                "transaction_id": line.transaction_id,
                "kind": line.kind,
                "description": line.description,
                "amount_minutes": line.amount_minutes,
                "balance_after_minutes": line.balance_after_minutes,
                "occurred_at": _iso(line.occurred_at),
            }
            for line in postings
        ],
        "outbox": [outbox_item(row, names) for row in outbox],
    }


def _hour_of(column: Any, starts: list[datetime]) -> Any:
    """Which of the hours starting at ``starts`` ``column`` falls in (its index), as SQL.

    A CASE rather than a date function: the same on SQLite and PostgreSQL, and it lets the
    database group a day's rows by hour in the pass that reads them."""
    return case(*((column < start + timedelta(hours=1), i) for i, start in enumerate(starts)))


def activity(hours: int = 24, platform: str | None = None) -> list[dict[str, Any]]:
    """Per hour: items delivered (one per item, however many attempts it took), items that
    went dead, failed attempts, and the sync lag at the hour's end.

    Sync lag has one definition across the gateway (this chart, its table, the platforms
    table and /metrics): how long the oldest item not yet delivered has been waiting. At an
    hour's end that is the oldest unfinished item, or the oldest one created before and
    completed after it (a dead or skipped item stops being waited for when it ends: it is in
    the operators' hands, and the dead-letter count says so).

    The database groups the window's rows by the hour they completed in (and the failed
    attempts by the hour they started in), read from indexes that cover these columns
    (``gateway.admin.models``): a day of a busy platform is tens of thousands of rows, too
    many to carry into Python on every page view. An item completed in a later hour and
    created before an hour's end was waited for at that end, so each hour's lag follows from
    the oldest creation among the items completed in each later hour (an item completed to
    the microsecond at an hour's end counts as still waited for at that instant).
    """
    now = utcnow()
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    starts = [end - timedelta(hours=hours - h) for h in range(hours)]
    ends = [min(start + timedelta(hours=1), now) for start in starts]
    since = starts[0]
    platform_id = None
    if platform:
        found = platform_by_name(platform)
        platform_id = found.id if found else ""

    done = OutboxItem.completed_at
    completed = select(
        _hour_of(done, starts).label("hour"), OutboxItem.state, OutboxItem.created_at
    ).where(done >= since)
    failures = select(_hour_of(SyncAttempt.started_at, starts).label("hour")).where(
        SyncAttempt.started_at >= since, FAILED_ATTEMPT
    )
    oldest = select(func.min(OutboxItem.created_at)).where(WAITING)
    if platform_id is not None:
        completed = completed.where(OutboxItem.platform_id == platform_id)
        failures = failures.where(SyncAttempt.platform_id == platform_id)
        oldest = oldest.where(OutboxItem.platform_id == platform_id)
    # Grouped outside a subquery: PostgreSQL does not see two renderings of the CASE (each
    # with its own parameters) as the same expression.
    by_hour = completed.subquery()
    delivered, dead = [0] * hours, [0] * hours
    first_created: list[datetime | None] = [None] * hours
    for hour, state, count, oldest_created in db.session.execute(
        select(
            by_hour.c.hour, by_hour.c.state, func.count(), func.min(by_hour.c.created_at)
        ).group_by(by_hour.c.hour, by_hour.c.state)
    ):
        if hour is None:
            continue  # completed after now: a clock ahead of this one
        if state == "succeeded":
            delivered[hour] = count
        elif state == "dead":
            dead[hour] = count
        created = _as_utc(oldest_created)
        if created is not None and (first_created[hour] is None or created < first_created[hour]):
            first_created[hour] = created
    failed = [0] * hours
    attempts = failures.subquery()
    for hour, count in db.session.execute(
        select(attempts.c.hour, func.count()).group_by(attempts.c.hour)
    ):
        if hour is not None:
            failed[hour] = count
    oldest_unfinished = _as_utc(db.session.scalar(oldest))
    result = []
    for i in range(hours):
        waiting = [
            moment
            for moment in (*first_created[i + 1 :], oldest_unfinished)
            if moment is not None and moment < ends[i]
        ]
        lag = int((ends[i] - min(waiting)).total_seconds()) if waiting else 0
        result.append(
            {
                "hour": _iso(starts[i]),
                "delivered": delivered[i],
                "dead": dead[i],
                "failed_attempts": failed[i],
                "lag_seconds": lag,
            }
        )
    return result


def _as_utc(value: Any) -> datetime | None:
    """A datetime aggregate comes back raw (a string on SQLite): read it as the column would."""
    if value is None or isinstance(value, datetime):
        return value.replace(tzinfo=value.tzinfo or UTC) if value else None
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)

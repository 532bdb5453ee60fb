"""``/admin/api``: the operators' JSON API (problem+json errors, cursor-paginated lists)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from marshmallow import Schema, ValidationError

from gateway.admin import actions, queries
from gateway.admin.auth import actor, api_admin
from gateway.db import db
from gateway.problems import Problem, ValidationProblem
from gateway.webhooks import subscriptions as webhooks
from schemas.admin import (
    ActivityQuery,
    AuditQuery,
    BulkBody,
    CallbackQuery,
    MemberQuery,
    OutboxQuery,
    ReasonBody,
    RotateBody,
    RunQuery,
    SkipBody,
    WebhookBody,
    WebhookUpdateBody,
)

bp = Blueprint("admin_api", __name__, url_prefix="/admin/api")


def _load(schema: Schema, data: Any) -> dict[str, Any]:
    try:
        return schema.load(data or {})
    except ValidationError as error:
        raise ValidationProblem(error.messages) from error  # type: ignore[arg-type]


def _listing(items: list[dict[str, Any]], next_cursor: str | None) -> Response:
    return jsonify({"items": items, "next_cursor": next_cursor})


def _platform(name: str) -> Any:
    platform = queries.platform_by_name(name)
    if platform is None:
        raise Problem(404, f"No platform named {name!r}.", title="Not found")
    return platform


@bp.get("/platforms")
@api_admin
def platforms() -> Response:
    """Every platform's health."""
    return jsonify({"items": queries.platforms_overview()})


@bp.get("/platforms/<name>")
@api_admin
def platform(name: str) -> Response:
    """One platform's health."""
    _platform(name)
    (found,) = [p for p in queries.platforms_overview() if p["name"] == name]
    return jsonify(found)


@bp.post("/platforms/<name>/reconcile")
@api_admin
def reconcile(name: str) -> tuple[Response, int]:
    """Queue a reconciliation now."""
    job_id = actions.reconcile_now(actor(), _platform(name))
    return jsonify({"queued": True, "job_id": job_id}), 202


def _filters(args: dict[str, Any]) -> dict[str, Any]:
    return {k: args.get(k) for k in ("tab", "state", "kind", "platform", "member")}


@bp.get("/outbox")
@api_admin
def outbox() -> Response:
    """Outbound items, filterable by tab (or state), platform, kind and member; with the
    count of each tab under the same filters."""
    args = _load(OutboxQuery(), request.args)
    filters = _filters(args)
    items, next_cursor = queries.outbox_page(filters, args["cursor"], args["limit"])
    return jsonify(
        {
            "items": items,
            "next_cursor": next_cursor,
            "counts": queries.outbox_tab_counts(filters),
            "count_cap": queries.TAB_COUNT_CAP,
        }
    )


@bp.post("/outbox/bulk")
@api_admin
def bulk() -> Response:
    """Retry or skip every item a filter selects: ``expected`` must equal what it selects now
    (the count the caller confirmed), and each item gets its own audit row."""
    body = _load(BulkBody(), request.get_json(silent=True))
    done = actions.bulk(actor(), _filters(body), body["action"], body["reason"], body["expected"])
    return jsonify({"action": body["action"], "done": done})


@bp.get("/outbox/<item_id>")
@api_admin
def outbox_item(item_id: str) -> Response:
    """One item with its payload, member, transaction, attempts and operator actions."""
    detail = queries.outbox_detail(item_id)
    if detail is None:
        raise Problem(404, f"No outbox item {item_id}.", title="Not found")
    return jsonify(detail)


@bp.post("/outbox/<item_id>/retry")
@api_admin
def retry(item_id: str) -> Response:
    """Deliver again now (the attempts made so far stay in the item's history)."""
    actions.retry_item(actor(), item_id)
    return jsonify(queries.outbox_detail(item_id))


@bp.post("/outbox/<item_id>/skip")
@api_admin
def skip(item_id: str) -> Response:
    """Give up on purpose, with a reason."""
    body = _load(SkipBody(), request.get_json(silent=True) or request.form.to_dict())
    actions.skip_item(actor(), item_id, body["reason"])
    return jsonify(queries.outbox_detail(item_id))


@bp.get("/work")
@api_admin
def work() -> Response:
    """Workers alive and what they run, queue depth, scheduler's last tick, Redis memory."""
    return jsonify(queries.work_state())


@bp.get("/callbacks")
@api_admin
def callbacks() -> Response:
    """Callback events of every state, filterable by state, platform and event type."""
    args = _load(CallbackQuery(), request.args)
    items, next_cursor = queries.callbacks_page(args, args["cursor"], args["limit"])
    return _listing(items, next_cursor)


@bp.get("/callbacks/<event_id>")
@api_admin
def callback(event_id: str) -> Response:
    """One event with its payload and signature verdict."""
    detail = queries.callback_detail(event_id)
    if detail is None:
        raise Problem(404, f"No callback event {event_id}.", title="Not found")
    return jsonify(detail)


@bp.post("/callbacks/<event_id>/reprocess")
@api_admin
def reprocess(event_id: str) -> Response:
    """Apply a parked or failed event again."""
    state = actions.reprocess_callback(actor(), event_id)
    return jsonify({"id": event_id, "state": state})


@bp.get("/reconciliation")
@api_admin
def runs() -> Response:
    """Reconciliation runs with their figures, newest first."""
    args = _load(RunQuery(), request.args)
    return _listing(*queries.runs_page(args["platform"], args["cursor"], args["limit"]))


@bp.get("/reconciliation/<run_id>")
@api_admin
def run(run_id: str) -> Response:
    """One run with each difference, its explanation and what resolves it."""
    detail = queries.run_detail(run_id)
    if detail is None:
        raise Problem(404, f"No reconciliation run {run_id}.", title="Not found")
    return jsonify(detail)


@bp.post("/reconciliation/differences/<difference_id>/resolve")
@api_admin
def resolve(difference_id: str) -> Response:
    """Mark a difference resolved, saying how."""
    body = _load(SkipBody(), request.get_json(silent=True) or request.form.to_dict())
    run_id = actions.resolve_difference(actor(), difference_id, body["reason"])
    return jsonify(queries.run_detail(run_id))


@bp.get("/members")
@api_admin
def members() -> Response:
    """Members whose name, email or id contains ``q``."""
    args = _load(MemberQuery(), request.args)
    return jsonify({"items": queries.member_search(args["q"])})


@bp.get("/members/<member_id>")
@api_admin
def member(member_id: str) -> Response:
    """One member: links, consents, balances, postings, outbox items."""
    detail = queries.member_detail(member_id)
    if detail is None:
        raise Problem(404, f"No member {member_id}.", title="Not found")
    return jsonify(detail)


@bp.post("/members/<member_id>/<any(disable, enable):change>")
@api_admin
def member_status(member_id: str, change: str) -> Response:
    """Disable a member (every login and token ends) or enable them again, with a reason."""
    body = _load(ReasonBody(), request.get_json(silent=True) or request.form.to_dict())
    act = actions.disable_member if change == "disable" else actions.enable_member
    act(actor(), member_id, body["reason"])
    return jsonify(queries.member_detail(member_id))


@bp.get("/audit")
@api_admin
def audit() -> Response:
    """Every admin action, newest first, with the operator's name."""
    args = _load(AuditQuery(), request.args)
    return _listing(
        *queries.audit_page(
            args["action"], args["actor"], args["target"], args["cursor"], args["limit"]
        )
    )


@bp.get("/activity")
@api_admin
def activity() -> Response:
    """Per-hour deliveries and sync lag, for the chart."""
    args = _load(ActivityQuery(), request.args)
    return jsonify({"items": queries.activity(args["hours"], args["platform"])})


def _webhook_problem(error: webhooks.WebhookError) -> Problem:
    if error.field == "id":
        return Problem(404, str(error), title="Not found")
    if error.field is None:
        return Problem(409, str(error), title="Conflict")
    return ValidationProblem({error.field: [str(error)]}, detail=str(error))


def _subscription(subscription_id: str) -> webhooks.Subscription:
    try:
        return webhooks.get_subscription(subscription_id)
    except webhooks.WebhookError as error:
        raise _webhook_problem(error) from None


@bp.get("/webhooks")
@api_admin
def webhook_list() -> Response:
    """Every webhook subscription (secrets only as their last characters)."""
    return jsonify({"items": [webhooks.describe(s) for s in webhooks.list_subscriptions()]})


@bp.post("/webhooks")
@api_admin
def webhook_add() -> tuple[Response, int]:
    """Subscribe a URL to events; the answer holds the signing secret, shown this once."""
    body = _load(WebhookBody(), request.get_json(silent=True))
    try:
        subscription, secret = webhooks.add_subscription(
            actor(), body["url"], body["events"], body["description"]
        )
    except webhooks.WebhookError as error:
        raise _webhook_problem(error) from None
    db.session.commit()
    return jsonify(webhooks.describe(subscription, secret)), 201


@bp.get("/webhooks/<subscription_id>")
@api_admin
def webhook(subscription_id: str) -> Response:
    """One subscription."""
    return jsonify(webhooks.describe(_subscription(subscription_id)))


@bp.post("/webhooks/<subscription_id>/disable")
@api_admin
def webhook_disable(subscription_id: str) -> Response:
    """Stop sending to a subscription; its unsent events are skipped."""
    subscription = _subscription(subscription_id)
    try:
        skipped = webhooks.disable_subscription(actor(), subscription)
    except webhooks.WebhookError as error:
        raise _webhook_problem(error) from None
    db.session.commit()
    return jsonify(webhooks.describe(subscription) | {"events_skipped": skipped})


@bp.post("/webhooks/<subscription_id>/secrets/rotate")
@api_admin
def webhook_rotate(subscription_id: str) -> Response:
    """A new signing secret (shown this once); the current one signs beside it for a while."""
    body = _load(RotateBody(), request.get_json(silent=True))
    subscription = _subscription(subscription_id)
    secret, until = webhooks.rotate_secret(actor(), subscription, body["grace_seconds"])
    db.session.commit()
    return jsonify(
        webhooks.describe(subscription, secret) | {"previous_signs_until": until.isoformat()}
    )


@bp.post("/webhooks/<subscription_id>/enable")
@api_admin
def webhook_enable(subscription_id: str) -> Response:
    """Send to a disabled subscription again; the events skipped meanwhile stay skipped."""
    subscription = _subscription(subscription_id)
    try:
        webhooks.enable_subscription(actor(), subscription)
    except webhooks.WebhookError as error:
        raise _webhook_problem(error) from None
    db.session.commit()
    return jsonify(webhooks.describe(subscription))


@bp.patch("/webhooks/<subscription_id>")
@api_admin
def webhook_update(subscription_id: str) -> Response:
    """Change a subscription's events or description (only events written from now on)."""
    body = _load(WebhookUpdateBody(), request.get_json(silent=True))
    subscription = _subscription(subscription_id)
    try:
        changed = webhooks.update_subscription(
            actor(), subscription, body.get("events"), body.get("description")
        )
    except webhooks.WebhookError as error:
        raise _webhook_problem(error) from None
    db.session.commit()
    return jsonify(webhooks.describe(subscription) | {"changed": changed})

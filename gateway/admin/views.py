"""``/admin``: the operators' page over the same queries as the admin API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import flask
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from markupsafe import Markup
from marshmallow import ValidationError
from sqlalchemy import select
from werkzeug.wrappers import Response

from gateway.admin import actions, queries
from gateway.admin.auth import actor, page_admin
from gateway.admin.chart import activity_svg
from gateway.admin.models import AdminAction
from gateway.db import db, utcnow
from gateway.federation.models import Platform
from gateway.i18n import gettext
from gateway.members.blueprint import safe_next
from gateway.problems import Problem
from gateway.webhooks import subscriptions as webhooks
from gateway.webhooks.models import WebhookSubscription
from schemas.admin import (
    AuditQuery,
    BulkBody,
    CallbackQuery,
    OutboxFilter,
    OutboxQuery,
    ReasonBody,
    RunQuery,
    SkipBody,
)
from schemas.vocabulary import WEBHOOK_EVENT_TYPES

bp = Blueprint("admin_pages", __name__, url_prefix="/admin")

FILTER_KEYS = ("tab", "kind", "platform", "member")


@bp.app_template_filter("admin_duration")
def duration(seconds: int) -> str:
    """Seconds as an operator reads them: 45 s, 12 min, 3 h 5 min, 2 d 4 h."""
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def _args(schema: type, data: object) -> dict:
    try:
        return schema().load(data)
    except ValidationError as error:
        title = gettext("admin.bad_filter")
        raise Problem(400, title, title=title) from error


def _page(template: str, **context: object) -> Response:
    return flask.Response(render_template(f"admin/{template}", **context))


def _filters(args: dict[str, Any]) -> dict[str, Any]:
    """The outbox filters that are set, as query arguments."""
    return {k: args[k] for k in FILTER_KEYS if args.get(k)}


@bp.get("")
@page_admin
def overview() -> Response:
    """Platforms at a glance, the work carriers, the 24-hour chart, what needs attention."""
    buckets = queries.activity(24)
    chart = activity_svg(
        buckets,
        {
            "title": gettext("admin.chart.title"),
            "deliveries": gettext("admin.chart.deliveries"),
            "lag": gettext("admin.chart.lag"),
        },
    )
    failing, _ = queries.outbox_page({"tab": "failing"}, None, 10)
    dead, _ = queries.outbox_page({"tab": "dead"}, None, 10)
    parked, _ = queries.callbacks_page({"state": "parked"}, None, 10)
    return _page(
        "overview.html",
        platforms=queries.platforms_overview(),
        work=queries.work_state(),
        chart=Markup(chart),  # noqa: S704 - built from numbers and escaped labels only
        buckets=buckets,
        failing=failing,
        dead=dead,
        parked=parked,
    )


@bp.get("/outbox")
@page_admin
def outbox() -> Response:
    """Outbound items in tabs by state, with counts, filters and bulk actions."""
    args = _args(OutboxQuery, request.args)
    counts = queries.outbox_tab_counts(args)
    if not args["tab"] and not args["state"]:
        # Open on the first tab with something in it: failing work is never hidden.
        args["tab"] = next((t for t in ("failing", "dead", "pending") if counts[t]), "succeeded")
    items, next_cursor = queries.outbox_page(args, args["cursor"], args["limit"])
    return _page(
        "outbox.html",
        items=items,
        next_cursor=next_cursor,
        args=args,
        filters=_filters(args),
        counts=counts,
        tabs=queries.OUTBOX_TAB_ORDER,
        cap=queries.TAB_COUNT_CAP,
        kinds=OutboxFilter().fields["kind"].validate.choices,  # type: ignore[union-attr]
        platforms=[p["name"] for p in queries.platform_names()],
    )


@bp.get("/outbox/bulk")
@page_admin
def bulk_confirm() -> Response:
    """Confirm a bulk retry or skip: how many items, which filter, and a reason."""
    args = _args(OutboxFilter, request.args)
    action = request.args.get("action")
    if action not in ("retry", "skip"):
        abort(404)
    ids = queries.outbox_ids(args, actions.BULK_LIMIT)
    return _page(
        "bulk.html",
        action=action,
        filters=_filters(args),
        count=len(ids),
        too_many=len(ids) > actions.BULK_LIMIT,
        limit=actions.BULK_LIMIT,
    )


@bp.post("/outbox/bulk")
@page_admin
def bulk() -> Response:
    """Do the confirmed bulk action."""
    try:
        body = BulkBody().load(request.form.to_dict())
    except ValidationError:
        flash(gettext("admin.skip.reason_needed"))
        keep: dict[str, Any] = {
            k: v for k, v in request.form.items() if k in (*FILTER_KEYS, "action") and v
        }
        return redirect(url_for(".bulk_confirm", **keep))
    done = actions.bulk(actor(), body, body["action"], body["reason"], body["expected"])
    flash(gettext(f"admin.bulk.done.{body['action']}", n=done))
    return redirect(url_for(".outbox", **_filters(body)))


@bp.get("/outbox/<item_id>")
@page_admin
def outbox_item(item_id: str) -> Response:
    """One item: payload, member, transaction, every attempt and operator action."""
    detail = queries.outbox_detail(item_id)
    if detail is None:
        abort(404)
    return _page("item.html", item=detail)


@bp.post("/outbox/<item_id>/retry")
@page_admin
def retry(item_id: str) -> Response:
    """Retry from the page."""
    actions.retry_item(actor(), item_id)
    flash(gettext("admin.retried"))
    return redirect(safe_next(request.form.get("back")) or url_for(".outbox_item", item_id=item_id))


@bp.post("/outbox/<item_id>/skip")
@page_admin
def skip(item_id: str) -> Response:
    """Skip from the page, with a reason."""
    try:
        body = SkipBody().load({"reason": request.form.get("reason", "")})
    except ValidationError:
        flash(gettext("admin.skip.reason_needed"))
        return redirect(url_for(".outbox_item", item_id=item_id))
    actions.skip_item(actor(), item_id, body["reason"])
    flash(gettext("admin.skipped"))
    return redirect(url_for(".outbox_item", item_id=item_id))


@bp.post("/platforms/<name>/reconcile")
@page_admin
def reconcile(name: str) -> Response:
    """Queue a reconciliation from the page."""
    platform = queries.platform_by_name(name)
    if platform is None:
        abort(404)
    actions.reconcile_now(actor(), platform)
    flash(gettext("admin.reconcile.queued", platform=name))
    return redirect(safe_next(request.form.get("back")) or url_for(".overview"))


@bp.get("/work")
@page_admin
def work() -> Response:
    """Workers, queue, scheduler and Redis."""
    return _page("work.html", work=queries.work_state())


@bp.get("/callbacks")
@page_admin
def callbacks() -> Response:
    """The callback log: every state, filtered."""
    args = _args(CallbackQuery, request.args)
    items, next_cursor = queries.callbacks_page(args, args["cursor"], args["limit"])
    return _page(
        "callbacks.html",
        items=items,
        next_cursor=next_cursor,
        args=args,
        filters={k: args[k] for k in ("state", "platform", "event_type") if args.get(k)},
        counts=queries.callback_state_counts(),
        cap=queries.TAB_COUNT_CAP,
        platforms=[p["name"] for p in queries.platform_names()],
    )


@bp.get("/callbacks/<event_id>")
@page_admin
def callback(event_id: str) -> Response:
    """One callback event: payload and signature verdict."""
    detail = queries.callback_detail(event_id)
    if detail is None:
        abort(404)
    return _page("callback.html", event=detail)


@bp.post("/callbacks/<event_id>/reprocess")
@page_admin
def reprocess(event_id: str) -> Response:
    """Apply a parked or failed event again from the page."""
    state = actions.reprocess_callback(actor(), event_id)
    flash(gettext("admin.reprocessed", state=gettext(f"admin.cbstate.{state}")))
    return redirect(url_for(".callback", event_id=event_id))


@bp.get("/reconciliation")
@page_admin
def runs() -> Response:
    """Reconciliation runs with their figures."""
    args = _args(RunQuery, request.args)
    items, next_cursor = queries.runs_page(args["platform"], args["cursor"], args["limit"])
    filters = {"platform": args["platform"]} if args["platform"] else {}
    return _page(
        "runs.html",
        items=items,
        next_cursor=next_cursor,
        filters=filters,
        platforms=[p["name"] for p in queries.platform_names()],
        args=args,
    )


@bp.get("/reconciliation/<run_id>")
@page_admin
def run(run_id: str) -> Response:
    """One run: each difference, its explanation and what resolves it."""
    detail = queries.run_detail(run_id)
    if detail is None:
        abort(404)
    return _page("run.html", run=detail)


@bp.post("/reconciliation/differences/<difference_id>/resolve")
@page_admin
def resolve(difference_id: str) -> Response:
    """Mark a difference resolved, with a reason."""
    try:
        body = SkipBody().load({"reason": request.form.get("reason", "")})
    except ValidationError:
        flash(gettext("admin.skip.reason_needed"))
        return redirect(safe_next(request.form.get("back")) or url_for(".runs"))
    run_id = actions.resolve_difference(actor(), difference_id, body["reason"])
    flash(gettext("admin.difference.resolved"))
    return redirect(url_for(".run", run_id=run_id))


@bp.get("/members")
@page_admin
def members() -> Response:
    """Search members by any part of name, email or id."""
    q = request.args.get("q", "").strip()
    found = queries.member_search(q) if len(q) >= 2 else []
    return _page("members.html", q=q, found=found)


@bp.get("/members/<member_id>")
@page_admin
def member(member_id: str) -> Response:
    """One member's links, consents, balances, postings and outbox items."""
    detail = queries.member_detail(member_id)
    if detail is None:
        abort(404)
    return _page("member.html", m=detail)


@bp.post("/members/<member_id>/<any(disable, enable):change>")
@page_admin
def member_status(member_id: str, change: str) -> Response:
    """Disable or enable a member from their page, with a reason."""
    try:
        body = ReasonBody().load({"reason": request.form.get("reason", "")})
    except ValidationError:
        flash(gettext("admin.members.reason_needed"))
        return redirect(url_for(".member", member_id=member_id))
    act = actions.disable_member if change == "disable" else actions.enable_member
    try:
        act(actor(), member_id, body["reason"])
    except Problem as problem:
        if problem.status != 409:
            raise
        # Another operator (or the CLI) changed the status since this page was drawn.
        flash(gettext("admin.members.changed_meanwhile"))
    else:
        flash(gettext(f"admin.members.{change}d"))
    return redirect(url_for(".member", member_id=member_id))


@bp.get("/audit")
@page_admin
def audit() -> Response:
    """The audit log, filtered in the page."""
    args = _args(AuditQuery, request.args)
    items, next_cursor = queries.audit_page(
        args["action"], args["actor"], args["target"], args["cursor"], args["limit"]
    )
    filters = {k: args[k] for k in ("action", "actor", "target") if args.get(k)}
    return _page(
        "audit.html",
        items=items,
        next_cursor=next_cursor,
        args=args,
        filters=filters,
        choices=queries.audit_filters(),
    )


# Webhook subscriptions. A new or rotated secret is rendered in the answer to the POST that
# made it and nowhere else: the session is a signed cookie anyone holding it can read, so
# a secret there would outlive the page (and be sent back with every request).
WEBHOOK_FIELDS = ("url", "events", "description")
RESUBMIT_SECONDS = 60


def _webhook_or_404(subscription_id: str) -> webhooks.Subscription:
    try:
        return webhooks.get_subscription(subscription_id)
    except webhooks.WebhookError:
        abort(404)


def _secret_page(
    subscription: webhooks.Subscription, secret: str, made: str, until: str | None = None
) -> Response:
    response = _page(
        "webhook_secret.html",
        w=webhooks.describe(subscription),
        secret=secret,
        made=made,
        until=until,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _webhook_form_errors(error: webhooks.WebhookError) -> dict[str, str]:
    field = error.field if error.field in WEBHOOK_FIELDS else "url"
    return {field: gettext(f"admin.webhooks.error.{field}")}


@bp.get("/webhooks")
@page_admin
def webhook_list() -> Response:
    """Every subscription with its delivery health."""
    subscriptions = webhooks.list_subscriptions()
    health = queries.delivery_health([s.platform for s in subscriptions])
    return _page(
        "webhooks.html",
        items=[webhooks.describe(s) | {"health": health[s.platform.id]} for s in subscriptions],
    )


def _new_form(values: dict[str, Any], errors: dict[str, str], status: int = 200) -> Response:
    response = _page(
        "webhook_new.html", values=values, errors=errors, event_types=WEBHOOK_EVENT_TYPES
    )
    response.status_code = status
    return response


@bp.get("/webhooks/new")
@page_admin
def webhook_new() -> Response:
    """The form that adds a subscription."""
    return _new_form({"url": "", "events": [], "description": ""}, {})


def _just_added(url: str) -> str | None:
    """The subscription this operator added for ``url`` in the last minute, if any."""
    since = utcnow() - timedelta(seconds=RESUBMIT_SECONDS)
    return db.session.scalar(
        select(AdminAction.target_id)
        .join(WebhookSubscription, WebhookSubscription.id == AdminAction.target_id)
        .join(Platform, Platform.id == WebhookSubscription.platform_id)
        .where(
            AdminAction.action == "webhook.add",
            AdminAction.actor == actor(),
            AdminAction.created_at >= since,
            Platform.base_url == url,
        )
        .limit(1)
    )


@bp.post("/webhooks")
@page_admin
def webhook_add() -> Response:
    """Add a subscription; the answer shows its secret, this once."""
    url = request.form.get("url", "").strip()
    events = request.form.getlist("events")
    description = request.form.get("description", "")
    values: dict[str, Any] = {"url": url, "events": events, "description": description}
    resubmitted = _just_added(url)
    if resubmitted is not None:
        # The secret page answers a POST: reloading it would add a twin and a second secret.
        flash(gettext("admin.webhooks.just_added"))
        return redirect(url_for(".webhook", subscription_id=resubmitted))
    try:
        subscription, secret = webhooks.add_subscription(actor(), url, events, description)
    except webhooks.WebhookError as error:
        db.session.rollback()
        return _new_form(values, _webhook_form_errors(error), 400)
    db.session.commit()
    return _secret_page(subscription, secret, "added")


def _detail(
    subscription: webhooks.Subscription,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    document = webhooks.describe(subscription)
    platform = subscription.platform
    recent, _ = queries.outbox_page({"platform": platform.name}, None, 10)
    history, _ = queries.audit_page(None, None, subscription.row.id, None, 20)
    response = _page(
        "webhook.html",
        w=document,
        health=queries.delivery_health([platform])[platform.id],
        recent=recent,
        history=history,
        values=values or {"events": document["events"], "description": document["description"]},
        errors=errors or {},
        event_types=WEBHOOK_EVENT_TYPES,
        grace_seconds=int(current_app.config.get("WEBHOOK_ROTATION_GRACE_SECONDS", 86400)),
    )
    response.status_code = status
    return response


@bp.get("/webhooks/<subscription_id>")
@page_admin
def webhook(subscription_id: str) -> Response:
    """One subscription: its health, secrets, recent events, history and actions."""
    return _detail(_webhook_or_404(subscription_id))


@bp.post("/webhooks/<subscription_id>/update")
@page_admin
def webhook_update(subscription_id: str) -> Response:
    """Change its events or description from the page."""
    subscription = _webhook_or_404(subscription_id)
    events = request.form.getlist("events")
    description = request.form.get("description", "")
    values: dict[str, Any] = {"events": events, "description": description}
    try:
        changed = webhooks.update_subscription(actor(), subscription, events, description)
    except webhooks.WebhookError as error:
        db.session.rollback()
        return _detail(subscription, values, _webhook_form_errors(error), 400)
    db.session.commit()
    flash(gettext("admin.webhooks.updated" if changed else "admin.webhooks.unchanged"))
    return redirect(url_for(".webhook", subscription_id=subscription_id))


@bp.get("/webhooks/<subscription_id>/disable")
@page_admin
def webhook_disable_confirm(subscription_id: str) -> Response:
    """Confirm disabling: what happens to the events not sent yet."""
    subscription = _webhook_or_404(subscription_id)
    if not webhooks.describe(subscription)["enabled"]:
        flash(gettext("admin.webhooks.already_disabled"))
        return redirect(url_for(".webhook", subscription_id=subscription_id))
    counts = queries.outbox_tab_counts({"platform": subscription.platform.name})
    return _page(
        "webhook_disable.html",
        w=webhooks.describe(subscription),
        waiting=counts["pending"] + counts["failing"],
    )


@bp.post("/webhooks/<subscription_id>/disable")
@page_admin
def webhook_disable(subscription_id: str) -> Response:
    """Disable from the confirmation page."""
    subscription = _webhook_or_404(subscription_id)
    try:
        skipped = webhooks.disable_subscription(actor(), subscription)
    except webhooks.WebhookError:
        db.session.rollback()
        flash(gettext("admin.webhooks.already_disabled"))
    else:
        db.session.commit()
        flash(gettext("admin.webhooks.disabled", n=skipped))
    return redirect(url_for(".webhook", subscription_id=subscription_id))


@bp.post("/webhooks/<subscription_id>/enable")
@page_admin
def webhook_enable(subscription_id: str) -> Response:
    """Enable again; the events skipped meanwhile stay skipped."""
    subscription = _webhook_or_404(subscription_id)
    try:
        webhooks.enable_subscription(actor(), subscription)
    except webhooks.WebhookError:
        db.session.rollback()
        flash(gettext("admin.webhooks.already_enabled"))
    else:
        db.session.commit()
        flash(gettext("admin.webhooks.enabled"))
    return redirect(url_for(".webhook", subscription_id=subscription_id))


@bp.post("/webhooks/<subscription_id>/rotate")
@page_admin
def webhook_rotate(subscription_id: str) -> Response:
    """A new signing secret, shown in the answer this once."""
    subscription = _webhook_or_404(subscription_id)
    secret, until = webhooks.rotate_secret(actor(), subscription)
    db.session.commit()
    return _secret_page(subscription, secret, "rotated", until.isoformat())

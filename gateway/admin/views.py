"""``/admin``: the operators' page over the same queries as the admin API."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from markupsafe import Markup
from marshmallow import Schema, ValidationError

from gateway.admin import actions, queries
from gateway.admin.auth import actor, page_admin
from gateway.admin.chart import activity_svg
from gateway.admin.filters import callback_query, outbox_query
from gateway.i18n import gettext
from gateway.members.blueprint import safe_next
from gateway.problems import Problem
from schemas.admin import AuditQuery, SkipBody

bp = Blueprint("admin_pages", __name__, url_prefix="/admin")


def _args(schema: Callable[[], Schema], data: object) -> dict:
    try:
        return schema().load(data)
    except ValidationError as error:
        title = gettext("admin.bad_filter")
        raise Problem(400, title, title=title) from error


def _page(template: str, **context: object) -> Response:
    return Response(render_template(f"admin/{template}", **context))


@bp.get("")
@page_admin
def overview() -> Response:
    """Platforms at a glance, the 24-hour chart, and what needs attention."""
    buckets = queries.activity(24)
    chart = activity_svg(
        buckets,
        {
            "title": gettext("admin.chart.title"),
            "deliveries": gettext("admin.chart.deliveries"),
            "lag": gettext("admin.chart.lag"),
        },
    )
    dead, _ = queries.outbox_page("dead", None, None, None, 20)
    parked, _ = queries.callbacks_page("parked", None, None, 20)
    return _page(
        "overview.html",
        platforms=queries.platforms_overview(),
        chart=Markup(chart),  # noqa: S704 - built from numbers and escaped labels only
        buckets=buckets,
        dead=dead,
        parked=parked,
    )


@bp.get("/outbox")
@page_admin
def outbox() -> Response:
    """Outbound items, filtered and paginated."""
    args = _args(outbox_query, request.args)
    items, next_cursor = queries.outbox_page(
        args["state"], args["platform"], args["kind"], args["cursor"], args["limit"]
    )
    return _page("outbox.html", items=items, next_cursor=next_cursor, args=args)


@bp.get("/outbox/<item_id>")
@page_admin
def outbox_item(item_id: str) -> Response:
    """One item and its attempts."""
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
    return redirect(url_for(".overview"))


@bp.get("/callbacks")
@page_admin
def callbacks() -> Response:
    """Callback events, parked ones first."""
    args = _args(callback_query, request.args)
    items, next_cursor = queries.callbacks_page(
        args["state"], args["platform"], args["cursor"], args["limit"]
    )
    return _page("callbacks.html", items=items, next_cursor=next_cursor, args=args)


@bp.post("/callbacks/<event_id>/reprocess")
@page_admin
def reprocess(event_id: str) -> Response:
    """Apply a parked event again from the page."""
    state = actions.reprocess_callback(actor(), event_id)
    flash(gettext("admin.reprocessed", state=state))
    return redirect(url_for(".callbacks"))


@bp.get("/members")
@page_admin
def members() -> Response:
    """Look a member up."""
    q = request.args.get("q", "").strip()
    found = queries.member_lookup(q) if q else []
    return _page("members.html", q=q, found=found)


@bp.get("/audit")
@page_admin
def audit() -> Response:
    """The audit log."""
    args = _args(AuditQuery, request.args)
    items, next_cursor = queries.audit_page(
        args["action"], args["actor"], args["cursor"], args["limit"]
    )
    return _page("audit.html", items=items, next_cursor=next_cursor, args=args)

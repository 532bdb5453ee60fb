"""``/admin/api``: the operators' JSON API (problem+json errors, cursor-paginated lists)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from marshmallow import Schema, ValidationError

from gateway.admin import actions, queries
from gateway.admin.auth import actor, api_admin
from gateway.admin.filters import callback_query, outbox_query
from gateway.problems import Problem, ValidationProblem
from schemas.admin import (
    ActivityQuery,
    AuditQuery,
    MemberQuery,
    SkipBody,
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


@bp.get("/outbox")
@api_admin
def outbox() -> Response:
    """Outbound items, filterable by state, platform and kind."""
    args = _load(outbox_query(), request.args)
    return _listing(
        *queries.outbox_page(
            args["state"], args["platform"], args["kind"], args["cursor"], args["limit"]
        )
    )


@bp.get("/outbox/<item_id>")
@api_admin
def outbox_item(item_id: str) -> Response:
    """One item with its attempts."""
    detail = queries.outbox_detail(item_id)
    if detail is None:
        raise Problem(404, f"No outbox item {item_id}.", title="Not found")
    return jsonify(detail)


@bp.post("/outbox/<item_id>/retry")
@api_admin
def retry(item_id: str) -> Response:
    """Deliver again now."""
    actions.retry_item(actor(), item_id)
    return jsonify(queries.outbox_detail(item_id))


@bp.post("/outbox/<item_id>/skip")
@api_admin
def skip(item_id: str) -> Response:
    """Give up on purpose, with a reason."""
    body = _load(SkipBody(), request.get_json(silent=True) or request.form.to_dict())
    actions.skip_item(actor(), item_id, body["reason"])
    return jsonify(queries.outbox_detail(item_id))


@bp.get("/callbacks")
@api_admin
def callbacks() -> Response:
    """Callback events; parked ones by default."""
    args = _load(callback_query(), request.args)
    return _listing(
        *queries.callbacks_page(args["state"], args["platform"], args["cursor"], args["limit"])
    )


@bp.post("/callbacks/<event_id>/reprocess")
@api_admin
def reprocess(event_id: str) -> Response:
    """Apply a parked event again."""
    state = actions.reprocess_callback(actor(), event_id)
    return jsonify({"id": event_id, "state": state})


@bp.get("/members")
@api_admin
def members() -> Response:
    """Look a member up by id or email."""
    args = _load(MemberQuery(), request.args)
    return jsonify({"items": queries.member_lookup(args["q"])})


@bp.get("/audit")
@api_admin
def audit() -> Response:
    """Every admin action, newest first."""
    args = _load(AuditQuery(), request.args)
    return _listing(
        *queries.audit_page(args["action"], args["actor"], args["cursor"], args["limit"])
    )


@bp.get("/activity")
@api_admin
def activity() -> Response:
    """Per-hour deliveries and sync lag, for the chart."""
    args = _load(ActivityQuery(), request.args)
    return jsonify({"items": queries.activity(args["hours"], args["platform"])})

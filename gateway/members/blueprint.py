"""The members' pages blueprint, and what its views share."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, redirect, render_template, request
from marshmallow import Schema, ValidationError
from werkzeug.datastructures import MultiDict

from gateway.auth.session import current_session_member
from gateway.i18n import gettext
from gateway.members.site import current_site
from gateway.problems import Problem
from gateway.ratelimit import hit

bp = Blueprint("members", __name__)

F = TypeVar("F", bound=Callable[..., Any])
HOME = "/account"


# The header's links to the members' pages, in order: (endpoint or path, catalog key). The
# hours and data pages are served by their own modules.
NAV = (
    ("/account", "nav.account"),
    ("/account/timebanks", "nav.timebanks"),
    ("/account/hours", "nav.hours"),
    ("/account/data", "nav.data"),
    ("/account/apps", "nav.apps"),
)


@bp.record_once
def _template_globals(state: Any) -> None:
    """Every gateway page knows who is logged in and where they came from (the header and
    the unconfirmed-address banner of the base template ask). Globals, not a context
    processor: templates that import macros from a layout run the base template too."""
    state.app.jinja_env.globals.update(
        session_member=current_session_member,
        current_site=current_site,
        this_page=this_page,
        safe_next=safe_next,
        NAV=NAV,
    )


def this_page() -> str | None:
    """The page being shown, to come back to after a form of its header or banner (None when
    it was the answer to a form whose address cannot be opened again). A form's answer is
    its page opened afresh, still on its way to the ``next`` the form carried."""
    if request.method in ("GET", "HEAD"):
        return request.full_path.rstrip("?")
    rule = request.url_rule
    if rule is None or "GET" not in (rule.methods or ()):
        return None
    next_url = safe_next(request.values.get("next"))
    return f"{request.path}?{urlencode({'next': next_url})}" if next_url else request.path


def safe_next(value: str | None) -> str | None:
    """``value`` if it is a path on this site, else None (no open redirects)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in value):
        return None
    return value


def next_or_home() -> str:
    """Where to go after the current page: a safe ``next`` or the account page."""
    return safe_next(request.values.get("next")) or HOME


def load_form(schema: Schema, form: MultiDict, lists: tuple[str, ...] = ()) -> tuple[dict, dict]:
    """Validate ``form``; returns (data, errors) with errors as {field: catalog key}."""
    raw: dict[str, Any] = {k: form.get(k) for k in form if k not in lists}
    for name in lists:
        raw[name] = form.getlist(name)
    try:
        return schema.load(raw), {}
    except ValidationError as error:
        messages: Mapping[str, Any] = error.messages  # type: ignore[assignment]
        return raw, {field: _first(message) for field, message in messages.items()}


def _first(message: Any) -> str:
    while isinstance(message, (list, dict)):
        message = next(iter(message.values() if isinstance(message, dict) else message))
    return str(message)


def page(template: str, status: int = 200, **context: Any) -> Response:
    """A rendered members' page."""
    return Response(render_template(f"members/{template}", **context), status=status)


def login_required(view: F) -> F:
    """Send visitors who are not logged in to the login page, and back here after."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_session_member() is None:
            return redirect(f"/login?{urlencode({'next': request.full_path.rstrip('?')})}")
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def limit(name: str, subject: str, allowed: int, window: int) -> None:
    """Refuse with a readable 429 page once ``subject`` went over its limit."""
    result = hit(name, subject, allowed, window)
    if not result.allowed:
        minutes = max(1, round(result.retry_after / 60))
        raise Problem(
            429,
            gettext("members.ratelimited.detail", minutes=minutes),
            title=gettext("members.ratelimited.title"),
            type="rate-limited",
            headers={"Retry-After": str(result.retry_after)},
        )

"""CSRF protection for every form on the gateway's pages.

A random token lives in the session; each form carries it in a hidden ``csrf_token``
field (or an ``X-CSRF-Token`` header for scripts). Every unsafe request to a page
blueprint (``app.extensions["page_blueprints"]``) must present it; the API and the
callbacks use bearer tokens and signatures instead, so they are not covered.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import TypeVar

from flask import Flask, current_app, request, session

from gateway.problems import Problem

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
F = TypeVar("F", bound=Callable)


def csrf_token() -> str:
    """The session's token, created on first use."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def exempt(view: F) -> F:
    """Leave ``view`` to check CSRF itself (an endpoint other sites may POST to by protocol)."""
    view._csrf_exempt = True  # type: ignore[attr-defined]
    return view


def check_csrf() -> None:
    """Refuse an unsafe page request whose token is missing or wrong."""
    if request.method in SAFE_METHODS:
        return
    if request.blueprint not in current_app.extensions.get("page_blueprints", set()):
        return
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, "_csrf_exempt", False):
        return
    require_csrf_token()


def require_csrf_token() -> None:
    """Refuse the request unless it carries the session's CSRF token."""
    expected = session.get("csrf")
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
        from gateway.i18n import gettext

        raise Problem(400, gettext("csrf.detail"), title=gettext("csrf.title"), type="csrf")


def init_app(app: Flask) -> None:
    """Check every page form; give templates ``csrf_token()``."""
    app.before_request(check_csrf)
    app.jinja_env.globals["csrf_token"] = csrf_token

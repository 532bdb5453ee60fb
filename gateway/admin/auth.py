"""Who may operate: a token with scope ``admin``, or a logged-in member with the admin role."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlencode

from flask import g, redirect, request

from gateway.auth.resource import current_token, require_oauth
from gateway.auth.session import current_session_member
from gateway.csrf import SAFE_METHODS, require_csrf_token
from gateway.i18n import gettext
from gateway.problems import Problem

F = TypeVar("F", bound=Callable[..., Any])


def actor() -> str:
    """The audit name of whoever is operating."""
    return g.admin_actor


def api_admin(view: F) -> F:
    """The admin API: a bearer token with ``admin``, or an admin's session (CSRF on writes)."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if "Authorization" not in request.headers:
            member = current_session_member()
            if member is not None and member.is_admin:
                if request.method not in SAFE_METHODS:
                    require_csrf_token()
                g.admin_actor = f"member:{member.id}"
                return view(*args, **kwargs)
            if member is not None:
                raise Problem(403, "Your account is not an operator's.", title="Forbidden")

        @require_oauth("admin")
        def protected() -> Any:
            if current_token.member_id:
                g.admin_actor = f"member:{current_token.member_id}"
            else:
                g.admin_actor = f"client:{current_token.client_id}"
            return view(*args, **kwargs)

        return protected()

    return wrapped  # type: ignore[return-value]


def page_admin(view: F) -> F:
    """The admin page: log in first; then only operators."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        member = current_session_member()
        if member is None:
            return redirect(f"/login?{urlencode({'next': request.full_path.rstrip('?')})}")
        if not member.is_admin:
            raise Problem(
                403, gettext("admin.forbidden.detail"), title=gettext("admin.forbidden.title")
            )
        g.admin_actor = f"member:{member.id}"
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]

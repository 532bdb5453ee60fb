"""Who is logged in to the gateway's own pages (members' login, the admin page).

The session is Flask's signed cookie: it holds the member id, the time of login
(for ``max_age``) and the member's ``session_epoch`` so that a password reset or an
operator's "log out everywhere" ends every session at once.
"""

from __future__ import annotations

import time

from flask import g, session

from gateway.db import db
from gateway.members.models import Member

_KEYS = ("member_id", "auth_time", "epoch")


def login_member(member: Member) -> None:
    """Start a fresh session for ``member`` (a new cookie: no session fixation)."""
    keep = {k: session[k] for k in ("locale",) if k in session}
    session.clear()
    session.update(keep)
    session.permanent = True
    session["member_id"] = member.id
    session["auth_time"] = int(time.time())
    session["epoch"] = member.session_epoch
    g.session_member = member


def logout_member() -> None:
    """End the session; the locale choice survives."""
    for key in _KEYS:
        session.pop(key, None)
    g.session_member = None


def auth_time() -> int | None:
    """When the current session logged in (epoch seconds), if it did."""
    return session.get("auth_time") if current_session_member() is not None else None


def current_session_member() -> Member | None:
    """The logged-in, active member, or None."""
    if "session_member" in g:
        return g.session_member
    member = None
    member_id = session.get("member_id")
    if member_id:
        member = db.session.get(Member, member_id)
        if member is None or not member.is_active or session.get("epoch") != member.session_epoch:
            member = None
            logout_member()
    g.session_member = member
    return member

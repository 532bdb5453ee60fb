"""Who is logged in to the gateway's own pages (members' pages, consent, the admin page).

A login is a row of ``member_sessions``; the browser holds only a random id for it, inside
Flask's signed cookie, which keeps carrying what is not a login (the locale, the CSRF
token, flashed messages). Ending a login deletes its row, so logout, a password reset, an
operator's disable and an erase end it at once, whatever copies of the cookie exist. A
login also ends after ``SESSION_IDLE_MINUTES`` without a request and
``SESSION_ABSOLUTE_HOURS`` after the password was typed.
"""

from __future__ import annotations

import secrets
import time
from datetime import datetime, timedelta

from flask import current_app, g, session
from sqlalchemy import delete, or_, select

from gateway.auth.models import token_digest
from gateway.db import db, rows_affected, utcnow
from gateway.jobs import task
from gateway.members.models import Member, MemberSession

SESSION_KEY = "sid"
# A pending request for a fresh login (see ``ask_fresh_login``), kept across the login.
_FRESH_KEY = "fresh_login"
# What belongs to the browser rather than to a login: the pages' language (and whether the
# member picked it) and the site it came from (gateway.members.site), for the way back.
_BROWSER_KEYS = ("locale", "locale_chosen", "site")
# What Flask's cookie keeps when a login starts or ends; the rest (the CSRF token, a link
# in progress) starts afresh, so nothing carried over from before the login is trusted.
_KEPT_ACROSS_LOGIN = (*_BROWSER_KEYS, _FRESH_KEY)
# last_seen_at is written at most this often: idle lifetimes are counted in minutes.
TOUCH_SECONDS = 60
# How long a member may take to log in again when a client asked for a fresh login.
FRESH_LOGIN_WINDOW_SECONDS = 15 * 60
_FRESH_PENDING_MAX = 5


def _lifetimes() -> tuple[timedelta, timedelta]:
    config = current_app.config
    return (
        timedelta(minutes=config["SESSION_IDLE_MINUTES"]),
        timedelta(hours=config["SESSION_ABSOLUTE_HOURS"]),
    )


def _expired(row: MemberSession, now: datetime) -> bool:
    idle, absolute = _lifetimes()
    return now - row.last_seen_at > idle or now - row.authenticated_at > absolute


def _keep_only(keys: tuple[str, ...]) -> None:
    kept = {key: session[key] for key in keys if key in session}
    session.clear()
    session.update(kept)


def _current_row() -> MemberSession | None:
    token = session.get(SESSION_KEY)
    if not isinstance(token, str) or not token:
        return None
    return db.session.scalar(
        select(MemberSession).where(MemberSession.token_hash == token_digest(token))
    )


def login_member(member: Member) -> None:
    """Start a new login for ``member`` in this browser; commits.

    The id is new (no session fixation) and this browser's previous login, if any, ends.
    """
    previous = _current_row()
    if previous is not None:
        db.session.delete(previous)
    _keep_only(_KEPT_ACROSS_LOGIN)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = MemberSession(
        token_hash=token_digest(token), member_id=member.id, authenticated_at=now, last_seen_at=now
    )
    db.session.add(row)
    db.session.commit()
    session.permanent = True
    session[SESSION_KEY] = token
    g.gateway_login = (member, row)


def logout_member() -> None:
    """End this browser's login at once (its row is deleted); commits. The language and the
    site the browser came from survive."""
    row = _current_row()
    if row is not None:
        db.session.delete(row)
        db.session.commit()
    _keep_only(_BROWSER_KEYS)
    g.gateway_login = None


def logout_everywhere(member: Member) -> None:
    """End every login of the member, this browser's included (a lost phone, a shared
    computer); commits. Apps keep their tokens: the member manages those one by one."""
    db.session.execute(delete(MemberSession).where(MemberSession.member_id == member.id))
    db.session.commit()
    _keep_only(_BROWSER_KEYS)
    g.gateway_login = None


def login_count(member: Member) -> int:
    """How many browsers are logged in as the member now (ended ones not yet pruned aside)."""
    now = utcnow()
    rows = db.session.scalars(select(MemberSession).where(MemberSession.member_id == member.id))
    return sum(1 for row in rows if not _expired(row, now))


def _current_login() -> tuple[Member, MemberSession] | None:
    if "gateway_login" in g:
        return g.gateway_login
    found = None
    token = session.get(SESSION_KEY)
    if isinstance(token, str) and token:
        found = db.session.execute(
            select(Member, MemberSession)
            .join(MemberSession, MemberSession.member_id == Member.id)
            .where(MemberSession.token_hash == token_digest(token))
        ).one_or_none()
        now = utcnow()
        if found is not None and (not found[0].is_active or _expired(found[1], now)):
            db.session.delete(found[1])
            db.session.commit()
            found = None
        elif found is not None and (now - found[1].last_seen_at).total_seconds() >= TOUCH_SECONDS:
            # Looked up before a view writes anything (login_required, the admin checks,
            # the authorization endpoint), so this commit holds nothing but the touch.
            found[1].last_seen_at = now
            db.session.commit()
        if found is None:
            session.pop(SESSION_KEY, None)
    g.gateway_login = tuple(found) if found is not None else None
    return g.gateway_login


def current_session_member() -> Member | None:
    """The logged-in, active member, or None."""
    login = _current_login()
    return login[0] if login is not None else None


def current_login_id() -> str | None:
    """The id of this browser's login (telling it apart among the member's logins), if any."""
    login = _current_login()
    return login[1].id if login is not None else None


def logged_in_at() -> float | None:
    """When this browser's login was made (epoch seconds, to the microsecond), if it is."""
    login = _current_login()
    return login[1].authenticated_at.timestamp() if login is not None else None


def auth_time() -> int | None:
    """When the current session logged in (whole epoch seconds, as ID tokens carry it)."""
    at = logged_in_at()
    return int(at) if at is not None else None


def ask_fresh_login() -> str:
    """Note that this browser must log in again from now on; returns the request's marker.

    The marker travels with the request to the login page and back; the current login is
    left alone, so a request from another site (``prompt=login``) logs nobody out and an
    abandoned login leaves the member logged in.
    """
    marker = secrets.token_urlsafe(12)
    pending = dict(session.get(_FRESH_KEY) or {})
    pending[marker] = time.time()
    newest = sorted(pending.items(), key=lambda item: item[1])[-_FRESH_PENDING_MAX:]
    session[_FRESH_KEY] = dict(newest)
    return marker


def logged_in_since_asked(marker: str | None) -> bool:
    """Whether this browser logged in after ``ask_fresh_login`` returned ``marker``."""
    asked_at = (session.get(_FRESH_KEY) or {}).get(marker or "")
    at = logged_in_at()
    if not isinstance(asked_at, float) or at is None:
        return False
    return at >= asked_at and time.time() - asked_at <= FRESH_LOGIN_WINDOW_SECONDS


def forget_fresh_login_request(marker: str | None) -> None:
    """The request ``marker`` names was answered: the marker cannot serve another one."""
    pending = dict(session.get(_FRESH_KEY) or {})
    if pending.pop(marker or "", None) is not None:
        session[_FRESH_KEY] = pending


@task
def prune_sessions() -> int:
    """Delete logins that ended by themselves (idle or too old); their cookies log nobody in."""
    idle, absolute = _lifetimes()
    now = utcnow()
    deleted = rows_affected(
        db.session.execute(
            delete(MemberSession).where(
                or_(
                    MemberSession.last_seen_at < now - idle,
                    MemberSession.authenticated_at < now - absolute,
                )
            )
        )
    )
    db.session.commit()
    return deleted or 0

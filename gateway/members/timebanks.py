"""The "connected timebanks" page: consent per platform, and linking an existing account.

Joining a timebank (a registration there) and linking an account there both need a confirmed
address and a recent login, as an identity broker asks before it ties an account to another:
a member whose login is older than ``LINK_REAUTH_MAX_AGE_SECONDS`` logs in again and comes back
to this page. Disconnecting needs neither: a member may always withdraw.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urlencode

from flask import abort, current_app, flash, redirect, request, session, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from connectors.errors import ConnectorError
from gateway.auth.session import auth_time, current_session_member
from gateway.db import db
from gateway.federation import consent, linking
from gateway.federation.models import Platform, is_timebank
from gateway.i18n import gettext
from gateway.members.blueprint import bp, login_required, page, safe_next
from gateway.members.models import Member
from gateway.members.site import way_back
from gateway.security_headers import allow_form_action

log = logging.getLogger(__name__)


def _member() -> Member:
    member = current_session_member()
    assert member is not None  # noqa: S101 - login_required
    return member


def _platform(name: str) -> Platform:
    platform = db.session.scalar(select(Platform).where(Platform.name == name, is_timebank()))
    if platform is None or not platform.enabled:
        abort(404)
    return platform


def _callback_url(platform: Platform) -> str:
    base = current_app.config["GATEWAY_BASE_URL"]
    return f"{base}{url_for('members.link_callback', name=platform.name)}"


def _page_url() -> str:
    """This page, keeping the ``next`` it was opened with."""
    next_url = safe_next(request.values.get("next"))
    target = url_for("members.timebanks")
    return f"{target}?{urlencode({'next': next_url})}" if next_url else target


def _back() -> Response:
    return redirect(_page_url())


def _login_is_recent() -> bool:
    logged_in = auth_time()
    max_age = current_app.config["LINK_REAUTH_MAX_AGE_SECONDS"]
    return logged_in is not None and time.time() - logged_in <= max_age


def _log_in_again(member: Member) -> Response:
    """Through the login page, and back to this page to take the same step again."""
    flash(gettext("timebanks.reauth"))
    query = urlencode({"next": _page_url(), "login_hint": member.email})
    return redirect(f"{url_for('members.login')}?{query}")


@bp.get("/account/timebanks")
@login_required
def timebanks() -> Response:
    """Every enabled timebank, what it would receive, and the member's state there; and the
    way back to the site that sent the member, the page's main action when there is one."""
    member = _member()
    next_url = safe_next(request.args.get("next"))
    platforms = db.session.scalars(
        select(Platform).where(Platform.enabled.is_(True), is_timebank()).order_by(Platform.name)
    ).all()
    rows = []
    for platform in platforms:
        link = consent.link_for(member, platform)
        settings = linking.link_settings(platform)
        if settings is not None:
            # The link form's POST is answered with a redirect to the platform's own page.
            allow_form_action(settings.authorize_url)
        rows.append(
            {
                "platform": platform,
                "consent": consent.active_consent(member, platform),
                "state": link.state if link else None,
                "linked_via": link.linked_via if link else None,
                "can_link": settings is not None,
                "relink": settings is not None and consent.unlinked_own_account(link),
            }
        )
    return page(
        "timebanks.html",
        member=member,
        verified=member.email_verified_at is not None,
        rows=rows,
        fields=consent.SHARED_FIELDS,
        text_version=consent.CONSENT_TEXT_VERSION,
        next=next_url,
        way=way_back(next_url),
    )


@bp.post("/account/timebanks/<name>/connect")
@login_required
def connect(name: str) -> Response:
    """Consent, and ask the sync engine to register the member there."""
    member, platform = _member(), _platform(name)
    if member.email_verified_at is not None and not _login_is_recent():
        return _log_in_again(member)
    if consent.unlinked_own_account(consent.link_for(member, platform)) and (
        linking.link_settings(platform) is not None
    ):
        # The member has an account there already: link it again rather than open another.
        return _start_link(member, platform)
    try:
        consent.grant(member, platform)
    except consent.Refused as refusal:
        db.session.rollback()
        flash(gettext(refusal.key))
        return _back()
    db.session.commit()
    flash(gettext("timebanks.connected", platform=platform.display_name or platform.name))
    return _back()


@bp.post("/account/timebanks/<name>/disconnect")
@login_required
def disconnect(name: str) -> Response:
    """Withdraw consent, and ask the sync engine to erase the member there (or unlink them)."""
    member, platform = _member(), _platform(name)
    consent.withdraw(member, platform)
    db.session.commit()
    flash(gettext("timebanks.disconnected", platform=platform.display_name or platform.name))
    return _back()


@bp.post("/account/timebanks/<name>/link")
@login_required
def link(name: str) -> Response:
    """Send the member to the platform to authorize linking their existing account."""
    member, platform = _member(), _platform(name)
    if member.email_verified_at is not None and not _login_is_recent():
        return _log_in_again(member)
    return _start_link(member, platform)


def _start_link(member: Member, platform: Platform) -> Response:
    try:
        start = linking.start(member, platform, _callback_url(platform))
    except consent.Refused as refusal:
        flash(gettext(refusal.key))
        return _back()
    session["link"] = {
        "platform": platform.name,
        "state": start.state,
        "verifier": start.verifier,
        "next": safe_next(request.values.get("next")),
    }
    return redirect(start.url)


@bp.get("/account/timebanks/<name>/link/callback")
@login_required
def link_callback(name: str) -> Response:
    """The platform sent the member back: exchange the code and store the link."""
    member, platform = _member(), _platform(name)
    pending = session.pop("link", None) or {}
    next_url = pending.get("next")
    target = url_for("members.timebanks")
    if next_url:
        target += "?" + urlencode({"next": next_url})
    if pending.get("platform") != platform.name:
        flash(gettext("timebanks.error.state"))
        return redirect(target)
    if "error" in request.args:
        flash(gettext("timebanks.error.refused"))
        return redirect(target)
    try:
        linking.finish(
            member,
            platform,
            code=request.args.get("code", ""),
            state=request.args.get("state", ""),
            expected_state=pending.get("state", ""),
            verifier=pending.get("verifier", ""),
            redirect_uri=_callback_url(platform),
        )
    except consent.Refused as refusal:
        db.session.rollback()
        flash(gettext(refusal.key))
        return redirect(target)
    except ConnectorError as error:
        db.session.rollback()
        log.warning("linking on %s failed: %s", platform.name, type(error).__name__)
        flash(gettext("timebanks.error.platform"))
        return redirect(target)
    flash(gettext("timebanks.linked", platform=platform.display_name or platform.name))
    return redirect(target)

"""The member's own data (GDPR): see and change the profile, take a copy, delete the account.

Who may call it: the logged-in member, about themselves only. Deleting asks for the password
again, whoever holds the browser: it cannot be undone. The "account deleted" page is for the
browser that just deleted one (it reads a mark the deletion left in that browser's cookie).
"""

from __future__ import annotations

import json
from typing import Any

from flask import current_app, flash, redirect, request, session, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from gateway.auth.session import current_login_id, current_session_member, logout_member
from gateway.db import db
from gateway.federation.models import Platform, PlatformLink
from gateway.i18n import current_locale, gettext
from gateway.members import accounts, export
from gateway.members.blueprint import bp, limit, load_form, login_required, page
from gateway.members.models import Member
from gateway.members.passwords import verify_password
from gateway.members.site import last_site_of
from schemas.members import SKILLS, ProfileForm

_ERASED_KEY = "erased"


def _member() -> Member:
    member = current_session_member()
    assert member is not None  # noqa: S101 - login_required
    return member


@bp.get("/account/data")
@login_required
def data() -> Response:
    """What the gateway keeps about the member, and what they can do with it."""
    return page("data.html", member=_member())


def _profile_values(member: Member) -> dict[str, Any]:
    return {
        "display_name": member.display_name,
        "locale": member.locale,
        "skills": list(member.skills or []),
        "municipio": member.municipio,
    }


@bp.route("/account/data/profile", methods=["GET", "POST"])
@login_required
def profile() -> Response:
    """Change name, language, skills and municipio; linked timebanks get the change."""
    member = _member()
    if request.method == "GET":
        return page("profile.html", values=_profile_values(member), errors={}, skills=SKILLS)
    values, errors = load_form(ProfileForm(), request.form, lists=("skills",))
    if errors:
        return page("profile.html", 422, values=values, errors=errors, skills=SKILLS)
    changed = accounts.update_profile(member, values)
    db.session.commit()
    locale = None
    if "locale" in changed:
        # The page speaks the new language from now on, in this browser too.
        session["locale"] = locale = member.locale
    flash(gettext("data.profile.saved" if changed else "data.profile.unchanged", locale))
    return redirect(url_for("members.data"))


def _copy(member: Member) -> dict[str, Any]:
    return export.gather(member, current_login_id())


@bp.get("/account/data/export")
@login_required
def export_page() -> Response:
    """Everything the gateway holds about the member, to read."""
    return page("export.html", copy=_copy(member := _member()), member=member)


@bp.get("/account/data/export.json")
@login_required
def export_json() -> Response:
    """The same, as a file to keep or to take elsewhere (GDPR article 20)."""
    copy = _copy(_member())
    body = json.dumps(export.as_json(copy), ensure_ascii=False, indent=2)
    day = copy["generated_at"].date().isoformat()
    return current_app.response_class(
        body + "\n",
        mimetype="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="my-data-{day}.json"',
            "X-Content-Type-Options": "nosniff",
        },
    )


def _joined_platforms(member: Member) -> list[tuple[str, str]]:
    """(name, how) of every timebank the erasure goes to: ``how`` is joined or linked."""
    rows = db.session.execute(
        select(Platform, PlatformLink.linked_via)
        .join(PlatformLink, PlatformLink.platform_id == Platform.id)
        .where(
            PlatformLink.member_id == member.id,
            PlatformLink.state.not_in(("erasing", "erased")),
        )
        .order_by(Platform.name)
    ).all()
    return [(p.display_name or p.name, "linked" if via == "oauth" else "joined") for p, via in rows]


def _website(member: Member) -> dict[str, str] | None:
    """The project's site the member last signed in to, where it asks to be returned to."""
    site = last_site_of(member.id)
    return {"name": site.name, "url": site.url} if site is not None else None


@bp.route("/account/data/delete", methods=["GET", "POST"])
@login_required
def delete() -> Response:
    """Say what deleting does; with the password typed again, do it."""
    member = _member()
    platforms = _joined_platforms(member)
    if request.method == "GET":
        return page("delete.html", platforms=platforms, error=None)
    config = current_app.config
    limit(
        "erase-account",
        member.id,
        config["LOGIN_RATE_LIMIT_PER_ACCOUNT"],
        config["LOGIN_RATE_LIMIT_WINDOW_SECONDS"],
    )
    if not verify_password(member.password_hash, request.form.get("password", "")):
        return page("delete.html", 401, platforms=platforms, error="data.delete.wrong_password")
    website = _website(member)
    locale = current_locale()
    accounts.erase_member(member)
    db.session.commit()
    logout_member()
    session["locale"] = locale
    session[_ERASED_KEY] = {"website": website, "platforms": [name for name, _ in platforms]}
    return redirect(url_for("members.deleted"))


@bp.get("/account/deleted")
def deleted() -> Response:
    """Where the browser that deleted an account lands, with a way back to the site."""
    done = session.pop(_ERASED_KEY, None)
    if not isinstance(done, dict):
        return redirect("/")
    return page("deleted.html", website=done.get("website"), platforms=done.get("platforms", []))

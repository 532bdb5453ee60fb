"""Signup, login, logout, email verification, password reset, the language switch and the
account page.

Messages never say whether an address has an account: signup and "forgot password" answer
the same page either way (the mail says the rest), and a failed login is one sentence for
any reason, after a password check that costs the same with or without an account.

Every flow carries ``next`` (the page that sent the member, often a site's authorization
request) through each of its steps, mail links included, and ends with a way back to it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import current_app, flash, redirect, request, url_for
from werkzeug.wrappers import Response

from gateway.auth.session import (
    current_session_member,
    login_count,
    login_member,
    logout_everywhere,
    logout_member,
)
from gateway.db import db
from gateway.i18n import LOCALES, choose_locale, chosen_locale, gettext, remember_ui_locales
from gateway.members import accounts
from gateway.members.blueprint import (
    HOME,
    bp,
    limit,
    load_form,
    login_required,
    page,
    safe_next,
)
from gateway.members.mail import queue_member_mail
from gateway.members.models import Member
from gateway.members.passwords import hash_password, password_problem, verify_password
from gateway.members.site import client_of_next, current_site, way_back
from gateway.members.tokens import BadLink, member_for_reset, member_for_verification
from gateway.ratelimit import reset as reset_limit
from schemas.members import SKILLS, EmailForm, LoginForm, NewPasswordForm, SignupForm


def _limits() -> tuple[int, int, int]:
    config = current_app.config
    return (
        config["LOGIN_RATE_LIMIT_PER_ACCOUNT"],
        config["LOGIN_RATE_LIMIT_PER_IP"],
        config["LOGIN_RATE_LIMIT_WINDOW_SECONDS"],
    )


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> Response:
    """Create an account; the address is confirmed by a link sent to it."""
    remember_ui_locales(request.values.get("ui_locales"))
    next_url = safe_next(request.values.get("next"))
    values: dict[str, Any] = {
        "email": request.args.get("login_hint", ""),
        "locale": None,
        "skills": [],
    }
    if request.method == "GET":
        return page("signup.html", values=values, errors={}, skills=SKILLS, next=next_url)
    data, errors = load_form(SignupForm(), request.form, lists=("skills",))
    weak = password_problem(str(data.get("password") or ""), str(data.get("email") or ""))
    if weak and "password" not in errors:
        errors["password"] = weak
    if errors:
        return page("signup.html", 422, values=data, errors=errors, skills=SKILLS, next=next_url)
    # Each signup sends a mail: unbounded, the form would let anyone flood an address.
    per_account, per_ip, window = _limits()
    limit("signup-ip", request.remote_addr or "unknown", per_ip, window)
    limit("signup-address", accounts.normalize_email(data["email"]), per_account, window)
    existing = accounts.find_by_email(data["email"])
    if existing is not None:
        # Same work, same page: only the owner of the address learns it was already in use.
        hash_password(data["password"])
        queue_member_mail(existing.id, "already_registered", next_url)
        return page("signup_sent.html", email=existing.email)
    try:
        member = accounts.create_member(
            data["email"],
            data["display_name"],
            data["password"],
            locale=data["locale"],
            skills=data["skills"],
            municipio=data["municipio"],
        )
    except accounts.MemberError as error:
        db.session.rollback()
        return page(
            "signup.html",
            422,
            values=data,
            errors={error.field: error.key},
            skills=SKILLS,
            next=next_url,
        )
    db.session.commit()
    queue_member_mail(member.id, "verify", next_url)
    return page("signup_sent.html", email=member.email)


def _go_on(target: str, message: str) -> Response:
    """Redirect to ``target``, with ``message`` shown there if it is a page of ours (a site's
    authorization request may end on the site, where it would wait for a later page)."""
    if client_of_next(target) is None:
        flash(message)
    return redirect(target)


def _bad_link(kind: str, bad: BadLink) -> Response:
    return page("link_failed.html", 400, kind=kind, reason=bad.reason)


@bp.get("/verify-email")
def verify_email() -> Response:
    """The link from the verification mail: confirm the address, log in the first time."""
    try:
        member, next_url = member_for_verification(request.args.get("token", ""))
    except BadLink as bad:
        return _bad_link("verify", bad)
    first_time = member.email_verified_at is None
    accounts.mark_verified(member)
    db.session.commit()
    next_url = safe_next(next_url)
    if first_time:
        # The link is single-use as a login: it proves the mailbox, once.
        login_member(member)
        return _go_on(next_url or "/account/timebanks", gettext("members.verified.detail"))
    return page("verified.html", way=way_back(next_url))


@bp.post("/verify-email/resend")
@login_required
def resend_verification() -> Response:
    """Send the verification link again, then go back to the page that offered it."""
    member = current_session_member()
    assert member is not None  # noqa: S101 - login_required
    next_url = safe_next(request.form.get("next"))
    if member.email_verified_at is None:
        per_account, _, window = _limits()
        limit("verify-resend", member.id, per_account, window)
        queue_member_mail(member.id, "verify", next_url)
        flash(gettext("account.verify.sent", email=member.email))
    return redirect(next_url or HOME)


def _logging_in_again(next_url: str | None) -> Member | None:
    """The member already logged in, when a client sent them to log in afresh (prompt=login,
    max_age): their login stays until this form succeeds."""
    return current_session_member() if next_url else None


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response:
    """Email and password; rate-limited per account and per address."""
    remember_ui_locales(request.values.get("ui_locales"))
    next_url = safe_next(request.values.get("next"))
    if request.method == "GET":
        again = _logging_in_again(next_url)
        hint = request.args.get("login_hint") or (again.email if again else "")
        return page("login.html", values={"email": hint}, error=None, next=next_url, again=again)
    data, errors = load_form(LoginForm(), request.form)
    if errors:
        return page("login.html", 422, values=data, error="members.login.failed", next=next_url)
    per_account, per_ip, window = _limits()
    email = accounts.normalize_email(data["email"])
    limit("login-ip", request.remote_addr or "unknown", per_ip, window)
    limit("login-account", email, per_account, window)
    member = accounts.find_by_email(email)
    valid = verify_password(member.password_hash if member else None, data["password"])
    if member is None or not valid or not member.is_active:
        return page(
            "login.html",
            401,
            values={"email": email},
            error="members.login.failed",
            next=next_url,
            again=_logging_in_again(next_url),
        )
    reset_limit("login-account", email)
    chosen = chosen_locale()
    if chosen and chosen != member.locale:
        member.locale = chosen  # picked on the login page: the member's word for their mail too
    login_member(member)
    return redirect(next_url or "/account")


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> Response:
    """GET asks (a link must not log anyone out); POST, with its CSRF token, does it, then
    goes to ``next`` or back to the site the member came from."""
    if request.method == "GET":
        return page("logout.html", next=safe_next(request.args.get("next")))
    site = current_site()  # before the login, and the session with it, ends
    logout_member()
    next_url = safe_next(request.values.get("next"))
    if next_url is None and site.external:
        return redirect(site.url)
    flash(gettext("members.logout.done"))
    return redirect(next_url or url_for("members.login"))


@bp.post("/language")
def choose_language() -> Response:
    """The header's switch: this browser speaks the language from now on, and so does the
    member's mail when someone is logged in."""
    locale = request.form.get("locale", "")
    if locale in LOCALES:
        choose_locale(locale)
        member = current_session_member()
        if member is not None and member.locale != locale:
            member.locale = locale
            db.session.commit()
    return redirect(safe_next(request.form.get("next")) or url_for("members.home"))


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password() -> Response:
    """Ask for a reset link; the answer is the same whether or not the address has an account."""
    next_url = safe_next(request.values.get("next"))
    if request.method == "GET":
        values = {"email": request.args.get("login_hint", "")}
        return page("forgot.html", values=values, errors={}, next=next_url)
    data, errors = load_form(EmailForm(), request.form)
    if errors:
        return page("forgot.html", 422, values=data, errors=errors, next=next_url)
    per_account, per_ip, window = _limits()
    email = accounts.normalize_email(data["email"])
    limit("reset-ip", request.remote_addr or "unknown", per_ip, window)
    limit("reset-account", email, per_account, window)
    member = accounts.find_by_email(email)
    if member is not None and member.is_active:
        queue_member_mail(member.id, "reset", next_url)
    return page("forgot_sent.html", email=email)


@bp.route("/password/reset", methods=["GET", "POST"])
def reset_password() -> Response:
    """Set a new password from a reset link; every login and token of the member ends.

    The link also finishes a signup: a member who never confirmed the address chooses the
    password here, which confirms it (the link came to their mailbox).
    """
    token = request.values.get("token", "")
    try:
        member, next_url = member_for_reset(token)
    except BadLink as bad:
        return _bad_link("reset", bad)
    finishing = not member.is_verified
    if request.method == "GET":
        return page("reset.html", token=token, errors={}, finishing=finishing)
    data, errors = load_form(NewPasswordForm(), request.form)
    if not errors and data["password"] != data["confirm"]:
        errors = {"confirm": "members.error.confirm"}
    if not errors:
        try:
            accounts.set_password(member, data["password"])
        except accounts.MemberError as error:
            errors = {error.field: error.key}
    if errors:
        return page("reset.html", 422, token=token, errors=errors, finishing=finishing)
    accounts.mark_verified(member)  # the link came to their mailbox
    db.session.commit()
    login_member(member)  # after the reset, which ended every earlier login
    next_url = safe_next(next_url)
    done = url_for("members.password_changed")
    return redirect(f"{done}?{urlencode({'next': next_url})}" if next_url else done)


@bp.get("/password/changed")
@login_required
def password_changed() -> Response:
    """The confirmation after a reset, and the way back to where the member was going."""
    return page("password_changed.html", way=way_back(safe_next(request.args.get("next"))))


@bp.get("/")
def home() -> Response:
    """Where a person who opens the gateway's address lands."""
    return page("home.html", member=current_session_member())


@bp.get("/account")
@login_required
def account() -> Response:
    """The member's profile and where to go from here."""
    member = current_session_member()
    assert member is not None  # noqa: S101 - login_required
    return page("account.html", member=member, logins=login_count(member))


@bp.post("/account/logout-everywhere")
@login_required
def logout_all() -> Response:
    """Log the member out of every browser at once (POST with its CSRF token only)."""
    member = current_session_member()
    assert member is not None  # noqa: S101 - login_required
    logout_everywhere(member)
    flash(gettext("account.logout_everywhere.done"))
    return redirect(url_for("members.login"))

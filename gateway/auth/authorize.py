"""The pages of the provider: the authorization endpoint (login, signup, consent) and logout.

``/oauth/authorize`` validates the request before anything else, so a bad client or
redirect URI is shown as a page here and never redirected to. A member who is not logged
in (or must log in again for ``prompt=login`` or ``max_age``) goes to the login page and
comes back; ``prompt=create`` opens signup. Logging in again never ends the current login
first: the request carries a marker to the login page and back, and is answered once a
login newer than the marker exists (``gateway.auth.session.ask_fresh_login``). Only
members who confirmed their address may authorize third-party clients. Every answer to
the client carries ``iss`` (RFC 9207).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from authlib.oidc.core.errors import ConsentRequiredError, InteractionRequiredError
from flask import Blueprint, Response, redirect, render_template, request, session, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from gateway import csrf
from gateway.auth.grants import is_third_party
from gateway.auth.models import ClientConsent, OAuthClient
from gateway.auth.scopes import parse_scopes
from gateway.auth.server import authorization_server, issuer
from gateway.auth.session import (
    ask_fresh_login,
    current_session_member,
    forget_fresh_login_request,
    logged_in_at,
    logged_in_since_asked,
    logout_member,
)
from gateway.db import db
from gateway.federation.models import Consent, Platform, is_timebank
from gateway.i18n import gettext, remember_ui_locales
from gateway.members.models import Member
from gateway.members.site import remember_site
from gateway.problems import Problem, problem_type

bp = Blueprint("oidc_pages", __name__)

# The members' pages (gateway.members) take ``next`` and ``login_hint`` and come back here.
LOGIN_PATH = "/login"
SIGNUP_PATH = "/signup"
TIMEBANKS_PATH = "/account/timebanks"
# The marker of a fresh login this request asked for (our own parameter, not OAuth's).
FRESH_LOGIN_PARAM = "fresh_login"


def _with_iss(response: BaseResponse) -> BaseResponse:
    location = response.headers.get("Location")
    if location and "iss=" not in location.split("?", 1)[-1]:
        response.headers["Location"] = add_params_to_uri(location, {"iss": issuer()})
    return response


def _error(error: OAuth2Error) -> BaseResponse:
    if error.redirect_uri:
        return _with_iss(authorization_server().handle_error_response(None, error))
    raise Problem(
        400,
        gettext("oidc.bad_request.detail", reason=error.description or error.error),
        title=gettext("oidc.bad_request.title"),
        type=problem_type(error.error),
    )


def _this_request(drop_prompts: frozenset[str] = frozenset(), marker: str | None = None) -> str:
    """This authorization request as a relative URL, without the prompts already handled
    and, given a ``marker``, carrying it instead of any earlier one."""
    skip = ("prompt", FRESH_LOGIN_PARAM) if marker else ("prompt",)
    params = [(k, v) for k, v in request.args.items(multi=True) if k not in skip]
    prompts = [p for p in request.args.get("prompt", "").split() if p not in drop_prompts]
    if prompts:
        params.append(("prompt", " ".join(prompts)))
    if marker:
        params.append((FRESH_LOGIN_PARAM, marker))
    return url_for(".authorize") + "?" + urlencode(params)


def _to_login(path: str, drop_prompts: frozenset[str] = frozenset()) -> BaseResponse:
    # Whatever login follows is the fresh one this request asks for (prompt=login, max_age).
    target = {"next": _this_request(drop_prompts, marker=ask_fresh_login())}
    if request.args.get("login_hint"):
        target["login_hint"] = request.args["login_hint"]
    return redirect(f"{path}?{urlencode(target)}")


def _offer_timebanks(member: Member) -> bool:
    """Whether to show the timebanks step before going back to the client.

    A member who has never said yes or no to any timebank is offered the choice once per
    session: signing up through the gateway is meant to extend to the timebanks.
    """
    if session.get("timebanks_offered"):
        return False
    has_choice = db.session.scalar(
        select(Consent.id).where(Consent.member_id == member.id).limit(1)
    )
    if has_choice is not None:
        return False
    enabled = db.session.scalar(
        select(Platform.id).where(Platform.enabled.is_(True), is_timebank()).limit(1)
    )
    if enabled is None:
        return False
    session["timebanks_offered"] = True
    return True


def _needs_fresh_login(prompts: set[str], max_age: str) -> bool:
    """The client wants a login newer than the current one (``prompt=login``, ``max_age``)."""
    if logged_in_since_asked(request.args.get(FRESH_LOGIN_PARAM)):
        return False
    at = logged_in_at() or 0.0
    return "login" in prompts or (max_age.isdigit() and time.time() - at > int(max_age))


def _remembered(member: Member, client: OAuthClient, scope: str) -> bool:
    if not is_third_party(client):
        return True
    row = db.session.scalar(
        select(ClientConsent).where(
            ClientConsent.member_id == member.id, ClientConsent.client_id == client.client_id
        )
    )
    return row is not None and parse_scopes(scope) <= parse_scopes(row.scope)


def _remember(member: Member, client: OAuthClient, scope: str) -> None:
    if not is_third_party(client):
        return
    row = db.session.scalar(
        select(ClientConsent).where(
            ClientConsent.member_id == member.id, ClientConsent.client_id == client.client_id
        )
    )
    if row is None:
        row = ClientConsent(member_id=member.id, client_id=client.client_id, scope="")
        db.session.add(row)
    row.scope = " ".join(sorted(parse_scopes(row.scope) | parse_scopes(scope)))


def _grant(grant: object, member: Member | None) -> BaseResponse:
    response = authorization_server().create_authorization_response(grant=grant, grant_user=member)
    db.session.commit()
    if member is not None:
        forget_fresh_login_request(request.args.get(FRESH_LOGIN_PARAM))
    return _with_iss(response)


def _refuse_unverified(grant: Any, member: Member, prompts: set[str]) -> BaseResponse:
    """A member whose address is unconfirmed may not authorize a third-party client."""
    if "none" in prompts:
        error = InteractionRequiredError(redirect_uri=grant.redirect_uri)
        error.state = grant.request.payload.state
        return _error(error)
    return Response(
        render_template(
            "oidc/unverified.html", client=grant.client, member=member, next=_this_request()
        ),
        status=403,
    )


@bp.route("/oauth/authorize", methods=["GET", "POST"])
@csrf.exempt  # relying parties may POST authorization requests; the consent form checks it
def authorize() -> BaseResponse:
    """Validate, authenticate the member, ask consent if needed, and answer the client."""
    remember_ui_locales(request.values.get("ui_locales"))
    server = authorization_server()
    member = current_session_member()
    prompts = set(request.values.get("prompt", "").split())
    deciding = request.method == "POST" and "decision" in request.form
    if deciding:
        csrf.require_csrf_token()
    elif member is not None and _needs_fresh_login(prompts, request.values.get("max_age", "")):
        # Answered as if nobody were logged in, but the login stays until a new one replaces
        # it: a link from another site must not log the member out.
        member = None
    try:
        grant = server.get_consent_grant(end_user=member)
    except OAuth2Error as error:
        return _error(error)
    client: OAuthClient = grant.client
    remember_site(client)  # the gateway's pages link back to it from now on
    scope = grant.request.scope or ""  # the requested scope, or the client's default one
    if member is None:
        if "create" in prompts:
            return _to_login(SIGNUP_PATH, frozenset({"create"}))
        return _to_login(LOGIN_PATH)
    if is_third_party(client) and not member.is_verified:
        return _refuse_unverified(grant, member, prompts)
    if not deciding and "none" not in prompts and _offer_timebanks(member):
        return redirect(f"{TIMEBANKS_PATH}?{urlencode({'next': _this_request()})}")
    if deciding:
        if request.form["decision"] != "allow":
            return _grant(grant, None)
        _remember(member, client, scope)
        return _grant(grant, member)
    if "consent" in prompts or not _remembered(member, client, scope):
        if "none" in prompts:
            refusal = ConsentRequiredError(redirect_uri=grant.redirect_uri)
            refusal.state = grant.request.payload.state
            return _error(refusal)
        return Response(
            render_template(
                "oidc/consent.html",
                client=client,
                scopes=sorted(parse_scopes(scope)),
                member=member,
                action=request.full_path,
            )
        )
    return _grant(grant, member)


@bp.route("/oauth/logout", methods=["GET", "POST"])
@csrf.exempt  # relying parties send logout requests here by protocol
def end_session() -> BaseResponse:
    """RP-initiated logout: at once with a valid ``id_token_hint``, else after confirmation."""
    server = authorization_server()
    remember_ui_locales(request.values.get("ui_locales"))
    try:
        end_request = server.validate_endpoint_request("end_session")
    except OAuth2Error as error:
        return _error(error)
    if end_request.needs_confirmation:
        return Response(render_template("oidc/logout_confirm.html"))
    response = server.create_endpoint_response("end_session", end_request)
    return response or Response(render_template("oidc/logged_out.html"))


@bp.post("/oauth/logout/confirm")
def confirm_logout() -> Response:
    """The member confirmed a logout that came without an ID token hint."""
    logout_member()
    # Without a verified hint we never redirect (OIDC RP-Initiated Logout section 3).
    return Response(render_template("oidc/logged_out.html"))

"""The demo site: a relying party built on Authlib's stock Flask client, as a real site would be.

It discovers the gateway, signs in with code + PKCE (or opens signup with ``prompt=create``),
verifies the ID token, shows its claims and the member's hours (``/api/v1/members/me``, read
afresh at every visit with the access token, refreshed by Authlib when it expires), and logs
out through the gateway's ``end_session_endpoint``. Its session cookie has its own name:
browsers share cookies across ports of one host, and the gateway's cookie must stay intact.

A sign-in that comes back to a browser that did not start it (the confirmation link of the
signup mail opened in the mail program's browser, a tab left open overnight) fails Authlib's
state check, ``mismatching_state``: the site says so in plain words and starts again, which
the member's login at the gateway usually completes without a form.
"""

from __future__ import annotations

import hmac
import json
import secrets
from functools import cache
from pathlib import Path
from typing import Any

import requests
from authlib.integrations.flask_client import OAuth, OAuthError
from flask import Flask, abort, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from gateway import security_headers
from gateway.devsetup import DEMO_SCOPE
from gateway.i18n import LOCALES
from gateway.members.hours_format import format_minutes

SCOPE = DEMO_SCOPE  # what `gateway run` registers the site's client for
# What the site keeps of a token response: enough to call the API and to refresh.
_TOKEN_FIELDS = ("access_token", "refresh_token", "token_type", "expires_at")


@cache
def _catalog() -> dict[str, dict[str, str]]:
    # The site's own words, in the gateway's catalog format: they ship with the site, not with
    # the gateway.
    path = Path(__file__).with_name("translations") / "demo.json"
    catalog: dict[str, dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))
    return catalog


def gettext(key: str, locale: str, **values: object) -> str:
    """The site's text for ``key`` in ``locale``; an unknown key raises, as the gateway's does."""
    text = _catalog()[key][locale]
    return text.format(**values) if values else text


def _locale() -> str:
    return request.accept_languages.best_match(LOCALES) or "it"


def _keep(token: dict[str, Any]) -> None:
    session["token"] = {k: token[k] for k in _TOKEN_FIELDS if k in token}


def balance_sentence(minutes: int, locale: str) -> str:
    """The balance as a person says it: "4 h 30 min in your favour", "1 h to give back"."""
    if minutes > 0:
        key = "demo.hours.credit"
    elif minutes < 0:
        key = "demo.hours.debit"
    else:
        key = "demo.hours.even"
    return gettext(key, locale=locale, duration=format_minutes(abs(minutes), locale))


def create_demo_app(gateway_url: str, client_id: str, client_secret: str, public_url: str) -> Flask:
    """The demo relying party for the gateway at ``gateway_url``, served at ``public_url``."""
    app = Flask(__name__, template_folder="templates")
    app.config.update(
        SECRET_KEY=secrets.token_urlsafe(32),
        SESSION_COOKIE_NAME="demo_site_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    security_headers.init_basic_app(app)
    public_url = public_url.rstrip("/")
    gateway_url = gateway_url.rstrip("/")
    oauth = OAuth(app)
    gateway = oauth.register(
        "gateway",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{gateway_url}/.well-known/openid-configuration",
        api_base_url=f"{gateway_url}/",
        client_kwargs={"scope": SCOPE, "code_challenge_method": "S256"},
        update_token=lambda token, **_: _keep(token),
    )

    @app.context_processor
    def _helpers() -> dict[str, Any]:
        lang = _locale()

        def t(key: str, **values: object) -> str:
            return gettext(key, locale=lang, **values)

        if "csrf" not in session:
            session["csrf"] = secrets.token_urlsafe(24)
        return {"t": t, "lang": lang, "csrf": session["csrf"], "gateway_url": gateway_url}

    def _balance() -> str | None:
        """The member's balance read now, or None if the gateway would not say."""
        token = session.get("token")
        if not token:
            return None
        try:
            answer = gateway.get("api/v1/members/me", token=token, timeout=10)
        except (OAuthError, requests.RequestException):
            return None
        if not answer.ok:
            return None
        return balance_sentence(answer.json()["account"]["balance_minutes"], _locale())

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/")
    def index() -> str:
        user = session.get("claims")
        notice = session.pop("notice", None)
        return render_template(
            "index.html", user=user, balance=_balance() if user else None, notice=notice
        )

    @app.get("/login")
    def login() -> Response:
        extra = {"prompt": "create"} if request.args.get("signup") else {}
        return gateway.authorize_redirect(f"{public_url}/callback", ui_locales=_locale(), **extra)

    @app.get("/callback")
    def callback() -> Response | tuple[str, int]:
        if "error" in request.args:
            return render_template("error.html", error=request.args["error"]), 400
        try:
            token = gateway.authorize_access_token()
        except OAuthError as error:
            if error.error == "mismatching_state":
                return render_template("restart.html"), 400
            return render_template("error.html", error=error.error), 400
        session["claims"] = dict(token["userinfo"])
        session["id_token"] = token["id_token"]
        _keep(token)
        return redirect(url_for("index"))

    @app.post("/logout")
    def logout() -> Response:
        sent = request.form.get("csrf", "")
        if not hmac.compare_digest(sent.encode(), session.get("csrf", "").encode()):
            abort(400)
        id_token = session.get("id_token")
        session.clear()
        session["notice"] = "logged_out"
        metadata = gateway.load_server_metadata()
        target = requests.Request(
            "GET",
            metadata["end_session_endpoint"],
            params={"id_token_hint": id_token, "post_logout_redirect_uri": f"{public_url}/"},
        ).prepare()
        return redirect(target.url or "/")

    return app

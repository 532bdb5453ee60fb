"""The demo site: a relying party built on Authlib's stock Flask client, as a real site would be.

It discovers the gateway, signs in with code + PKCE (or opens signup with ``prompt=create``),
verifies the ID token, shows its claims and the member's hours (``/api/v1/members/me``), and
logs out through the gateway's ``end_session_endpoint``. Its session cookie has its own name:
browsers share cookies across ports of one host, and the gateway's cookie must stay intact.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

import requests
from authlib.integrations.flask_client import OAuth, OAuthError
from flask import Flask, abort, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from gateway import security_headers
from gateway.i18n import LOCALES, gettext

SCOPE = "openid profile email offline_access hours:read"


def _locale() -> str:
    return request.accept_languages.best_match(LOCALES) or "it"


def create_demo_app(gateway_url: str, client_id: str, client_secret: str, public_url: str) -> Flask:
    """The demo relying party for the gateway at ``gateway_url``, served at ``public_url``."""
    app = Flask(__name__, template_folder="../templates/demo")
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
        client_kwargs={"scope": SCOPE, "code_challenge_method": "S256"},
    )

    @app.context_processor
    def _helpers() -> dict[str, Any]:
        lang = _locale()

        def t(key: str, **values: object) -> str:
            return gettext(key, locale=lang, **values)

        if "csrf" not in session:
            session["csrf"] = secrets.token_urlsafe(24)
        return {"t": t, "lang": lang, "csrf": session["csrf"], "gateway_url": gateway_url}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/")
    def index() -> str:
        return render_template("index.html", user=session.get("claims"), me=session.get("me"))

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
            return render_template("error.html", error=error.error), 400
        session["claims"] = dict(token["userinfo"])
        session["id_token"] = token["id_token"]
        me = requests.get(
            f"{gateway_url}/api/v1/members/me",
            headers={"Authorization": f"Bearer {token['access_token']}"},
            timeout=10,
        )
        session["me"] = me.json() if me.ok else None
        return redirect(url_for("index"))

    @app.post("/logout")
    def logout() -> Response:
        sent = request.form.get("csrf", "")
        if not hmac.compare_digest(sent.encode(), session.get("csrf", "").encode()):
            abort(400)
        id_token = session.get("id_token")
        session.clear()
        metadata = gateway.load_server_metadata()
        target = requests.Request(
            "GET",
            metadata["end_session_endpoint"],
            params={"id_token_hint": id_token, "post_logout_redirect_uri": f"{public_url}/"},
        ).prepare()
        return redirect(target.url or "/")

    return app

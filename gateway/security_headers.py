"""The browser-facing security headers of every response, in one place.

Every HTML page gets a Content-Security-Policy without inline script or style, may not be
framed (clickjacking of login and consent), and is never stored by a cache (pages hold CSRF
tokens and personal data). Other responses are left to cache as their views say, except that
an answer to a request carrying credentials (a bearer token, a session) is ``no-store`` unless
its view chose otherwise.

``form-action`` needs care: Chromium applies it to every redirect that follows a form's
submission, with the policy of the page that held the form. Consent and login pages lead
through redirects to the client's ``redirect_uri``, and linking a timebank account leads to
the platform's authorization page; such a page adds those origins (``allow_form_action``,
and here the registered redirect URIs of the client an authorization request names), and
every other page allows ``'self'`` alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qs, urlsplit

from flask import Flask, Response, current_app, g, request
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

__all__ = ["allow_form_action", "init_app", "init_basic_app"]

AUTHORIZE_PATH = "/oauth/authorize"
HSTS = "max-age=31536000; includeSubDomains"
# A web origin as CSP accepts it: nothing that could end a source or add a directive.
_SOURCE = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+$")
# Query parameters that are secrets: a page reached with one sends no Referer at all.
_SECRET_PARAMS = ("token", "code")


def origin(url: str) -> str | None:
    """``url``'s origin as a CSP source, or None if it is no http(s) URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if scheme not in ("http", "https") or not host:
        return None
    host = f"[{host}]" if ":" in host else host
    source = f"{scheme}://{host}" + (f":{port}" if port else "")
    return source if _SOURCE.match(source) else None


def allow_form_action(*urls: str) -> None:
    """Let a form of the page being rendered end up (after redirects) at these URLs' origins."""
    allowed: set[str] = g.setdefault("form_action_origins", set())
    allowed.update(o for o in map(origin, urls) if o)


def _authorization_client_id() -> str | None:
    """The client of the authorization request this page is part of (itself, or its ``next``)."""
    if request.path == AUTHORIZE_PATH:
        return request.values.get("client_id")
    target = urlsplit(request.values.get("next") or "")
    if target.scheme or target.netloc or target.path != AUTHORIZE_PATH:
        return None
    client_ids = parse_qs(target.query).get("client_id")
    return client_ids[0] if client_ids else None


def _client_redirect_uris(client_id: str) -> Iterable[str]:
    from gateway.auth.models import OAuthClient
    from gateway.db import db

    try:
        uris = db.session.scalar(
            select(OAuthClient.redirect_uris).where(OAuthClient.client_id == client_id)
        )
    except SQLAlchemyError:
        db.session.rollback()  # the page stays as strict as any other
        return ()
    return uris or ()


def content_security_policy() -> str:
    """The policy of the HTML page being answered."""
    client_id = _authorization_client_id()
    if client_id:
        allow_form_action(*_client_redirect_uris(client_id))
    form_action = " ".join(["'self'", *sorted(g.get("form_action_origins", ()))])
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            f"form-action {form_action}",
            "frame-ancestors 'none'",
        )
    )


def _carries_credentials() -> bool:
    cookie = current_app.config.get("SESSION_COOKIE_NAME", "session")
    return "Authorization" in request.headers or cookie in request.cookies


def basic_headers(response: Response) -> Response:
    """What any of our servers sends: no framing, no MIME sniffing."""
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def add_headers(response: Response) -> Response:
    """The gateway's headers for ``response`` (an ``after_request`` hook)."""
    basic_headers(response)
    secret_in_url = any(name in request.args for name in _SECRET_PARAMS)
    response.headers.setdefault(
        "Referrer-Policy", "no-referrer" if secret_in_url else "strict-origin-when-cross-origin"
    )
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = content_security_policy()
        response.headers["Cache-Control"] = "no-store"
    elif "Cache-Control" not in response.headers and _carries_credentials():
        response.headers["Cache-Control"] = "no-store"
    if current_app.config["GATEWAY_ENV"] == "production":
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def init_app(app: Flask) -> None:
    """Add the headers to every response of the gateway."""
    app.after_request(add_headers)


def init_basic_app(app: Flask) -> None:
    """Add the framing and sniffing headers to a development tool (demo site, sandbox)."""
    app.after_request(basic_headers)

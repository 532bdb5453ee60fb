"""The security headers: CSP, framing, caching, referrer, HSTS, and the session cookie."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlencode

import pytest

from gateway.db import db, utcnow
from gateway.federation.platforms import add_platform
from gateway.security_headers import origin
from tests.auth.oidc_helpers import authorize_params, log_in, pkce_pair
from tests.factories import bearer_headers, create_client, create_member

TEMPLATES = Path(__file__).parent.parent / "gateway" / "templates"


def directives(response) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    parsed = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


def assert_page_headers(response) -> None:
    assert response.mimetype == "text/html"
    csp = directives(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["form-action"][0] == "'self'"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] in ("strict-origin-when-cross-origin", "no-referrer")
    assert "Strict-Transport-Security" not in response.headers


@pytest.mark.parametrize(
    "path",
    ["/", "/login", "/signup", "/password/forgot", "/docs", "/oauth/authorize"],
)
def test_every_public_page_has_the_headers(client, path):
    response = client.get(path)
    assert_page_headers(response)


def test_error_pages_have_the_headers(client):
    refused = client.post("/login", data={"email": "x@example.org"})  # no CSRF token
    assert refused.status_code == 400
    assert_page_headers(refused)


@pytest.mark.parametrize("path", ["/account", "/account/timebanks", "/admin"])
def test_every_member_and_admin_page_has_the_headers(app, client, path):
    with app.app_context():
        member = create_member(is_admin=True, email_verified_at=utcnow())
    log_in(client, member)
    response = client.get(path)
    assert response.status_code == 200
    assert_page_headers(response)


def test_the_consent_page_may_send_the_member_on_to_the_client_only(app, client):
    with app.app_context():
        member = create_member(email_verified_at=utcnow())
        relying_party, _ = create_client(
            redirect_uris=["https://rp.example:8443/cb", "https://rp.example/other"]
        )
        create_client(redirect_uris=["https://someone-else.example/cb"])
    log_in(client, member)
    _, challenge = pkce_pair()
    params = authorize_params(
        relying_party.client_id, challenge, redirect_uri="https://rp.example:8443/cb"
    )
    response = client.get(f"/oauth/authorize?{urlencode(params)}")
    assert response.status_code == 200
    assert 'name="decision"' in response.get_data(as_text=True)
    assert_page_headers(response)
    # Chromium checks form-action on the redirect that follows the consent form.
    assert directives(response)["form-action"] == [
        "'self'",
        "https://rp.example",
        "https://rp.example:8443",
    ]


def test_the_login_page_of_an_authorization_allows_the_clients_redirects(app, client):
    with app.app_context():
        relying_party, _ = create_client(redirect_uris=["http://127.0.0.1:5002/callback"])
    _, challenge = pkce_pair()
    authorization = "/oauth/authorize?" + urlencode(
        authorize_params(relying_party.client_id, challenge)
    )
    login = client.get("/login?" + urlencode({"next": authorization}))
    assert directives(login)["form-action"] == ["'self'", "http://127.0.0.1:5002"]
    # A failed attempt shows the form again, under the same policy.
    failed = client.post(
        "/login",
        data={"email": "x@example.org", "password": "wrong", "next": authorization},
        headers={"X-CSRF-Token": _csrf(client)},
    )
    assert failed.status_code == 401
    assert directives(failed)["form-action"] == ["'self'", "http://127.0.0.1:5002"]


@pytest.mark.parametrize(
    "next_url",
    [
        None,
        "/account",
        "/oauth/authorize?client_id=nobody",
        "https://evil.example/oauth/authorize?client_id=x",
        "//evil.example/oauth/authorize?client_id=x",
    ],
)
def test_other_pages_send_forms_to_the_gateway_alone(app, client, next_url):
    with app.app_context():
        create_client(client_id="x", redirect_uris=["https://rp.example/cb"])
    response = client.get("/login" + (f"?{urlencode({'next': next_url})}" if next_url else ""))
    assert directives(response)["form-action"] == ["'self'"]


def test_the_timebanks_page_may_send_the_member_to_the_platforms_login(app, client):
    with app.app_context():
        add_platform(
            "tr",
            "timerepublik",
            "https://tr.example/api",
            credentials={"client_id": "gw", "client_secret": "s"},
        )
        db.session.commit()
        member = create_member(email_verified_at=utcnow())
    log_in(client, member)
    response = client.get("/account/timebanks")
    assert "/link" in response.get_data(as_text=True)
    assert directives(response)["form-action"] == ["'self'", "https://tr.example"]


def test_pages_reached_with_a_secret_in_the_url_send_no_referrer(client):
    assert client.get("/password/reset?token=abc").headers["Referrer-Policy"] == "no-referrer"
    assert client.get("/verify-email?token=abc").headers["Referrer-Policy"] == "no-referrer"
    assert client.get("/login").headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_answers_to_credentials_are_not_stored_public_documents_are(app, client):
    with app.app_context():
        member = create_member()
        headers = bearer_headers("hours:read", member)
    me = client.get("/api/v1/members/me", headers=headers)
    assert me.status_code == 200
    assert me.headers["Cache-Control"] == "no-store"
    assert "Content-Security-Policy" not in me.headers
    assert me.headers["X-Content-Type-Options"] == "nosniff"
    for path in ("/.well-known/openid-configuration", "/oauth/jwks"):
        public = client.get(path)
        assert public.headers["Cache-Control"] == "public, max-age=300", path
    # The stylesheet keeps its caching even when the browser sends the session cookie.
    log_in(client, member)
    css = client.get("/static/gateway.css")
    assert css.status_code == 200
    assert "no-store" not in css.headers.get("Cache-Control", "")
    css.close()


def test_the_session_cookie_is_lax_and_http_only(client):
    response = client.get("/login")
    cookie = response.headers["Set-Cookie"]
    assert "SameSite=Lax" in cookie
    assert "HttpOnly" in cookie


def test_hsts_in_production_only(make_app, tmp_path):
    production = make_app(GATEWAY_ENV="production", SESSION_COOKIE_SECURE=False)
    response = production.test_client().get("/login")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "Strict-Transport-Security" not in make_app().test_client().get("/login").headers


def test_the_development_tools_refuse_framing(tmp_path):
    from gateway_demo_site.app import create_demo_app
    from gateway_sandbox import create_sandbox_app

    sandbox = create_sandbox_app({"SANDBOX_DATA_DIR": str(tmp_path / "sandbox")})
    demo = create_demo_app("http://127.0.0.1:1", "demo", "secret", "http://127.0.0.1:2")
    for response in (sandbox.test_client().get("/oauth/authorize"), demo.test_client().get("/")):
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_templates_hold_no_inline_style_or_script():
    """The CSP allows neither: a template that had one would break in browsers."""
    inline = re.compile(r"<script|<style|\sstyle=|\son[a-z]+=|javascript:", re.IGNORECASE)
    offenders = [
        str(path.relative_to(TEMPLATES))
        for path in TEMPLATES.rglob("*.html")
        if path.parent.name != "demo" and inline.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://rp.example/cb?x=1", "https://rp.example"),
        ("http://127.0.0.1:5002/callback", "http://127.0.0.1:5002"),
        ("https://user:pw@rp.example:443/cb", "https://rp.example:443"),
        ("http://[::1]:8080/cb", "http://[::1]:8080"),
        ("javascript:alert(1)", None),
        ("com.example.app:/cb", None),
        ("https:///cb", None),
        ("https://rp.example:99999/cb", None),
        ("https://rp.example;script-src *", None),
    ],
)
def test_origins_are_only_ever_web_origins(url, expected):
    assert origin(url) == expected


def _csrf(client) -> str:
    with client.session_transaction() as session:
        return session.setdefault("csrf", "t" * 43)

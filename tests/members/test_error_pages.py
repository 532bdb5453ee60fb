"""Errors as pages for browsers, in the gateway's layout with a way on, and as problem+json
for API clients: one decision (``gateway.problems.wants_page``), made on Accept."""

from __future__ import annotations

from html import unescape

import pytest

from gateway.db import utcnow
from tests.auth.oidc_helpers import log_in
from tests.factories import create_member
from tests.members.helpers import csrf

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def _page(response) -> str:
    assert response.mimetype == "text/html"
    html = unescape(response.get_data(as_text=True))
    assert '<header class="site">' in html  # the layout, with its way out
    assert '<link rel="stylesheet" href="/static/gateway.css">' in html
    return html


@pytest.mark.parametrize(
    ("language", "words"),
    [("it", "Pagina non trovata"), ("en", "Page not found")],
)
def test_a_browser_gets_a_page_for_an_unknown_address(client, language, words):
    response = client.get("/no/such/page", headers={"Accept": BROWSER, "Accept-Language": language})
    assert response.status_code == 404
    html = _page(response)
    assert f"<h1>{words}</h1>" in html
    assert '<a href="/">' in html
    assert "Content-Security-Policy" in response.headers


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/problem+json"])
def test_api_clients_keep_problem_json(client, accept):
    headers = {"Accept": accept} if accept else {}
    for path in ("/no/such/page", "/api/v1/nothing-here"):
        response = client.get(path, headers=headers)
        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["status"] == 404


def test_the_api_answers_problem_json_even_to_a_browser(client):
    response = client.get("/api/v1/members/me", headers={"Accept": BROWSER})
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


def test_a_page_asked_for_json_answers_json(client):
    refused = client.post("/login", headers={"Accept": "application/json"})
    assert refused.status_code == 400
    assert refused.mimetype == "application/problem+json"
    assert refused.get_json()["type"].endswith("/csrf")


def test_a_wrong_method_is_a_page_with_allow(client):
    response = client.delete("/login", headers={"Accept": BROWSER, "Accept-Language": "en"})
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert "<h1>This cannot be done here</h1>" in _page(response)


def test_an_expired_form_offers_to_open_it_again(client):
    response = client.post("/signup?next=/account", data={"email": "x@example.org"})
    assert response.status_code == 400
    html = _page(response)
    assert "<h1>Modulo scaduto</h1>" in html
    assert '<a href="/signup?next=/account">Apri di nuovo la pagina e riprova</a>' in html


def test_too_many_logins_offer_a_new_password(make_app):
    app = make_app(LOGIN_RATE_LIMIT_PER_ACCOUNT=1)
    client = app.test_client()
    for _ in range(2):
        response = client.post(
            "/login",
            data={
                "email": "ivo@example.org",
                "password": "not the password",
                "next": "/account/timebanks",
                "csrf_token": csrf(client),
            },
        )
    assert response.status_code == 429
    html = _page(response)
    assert "<h1>Troppi tentativi</h1>" in html
    assert (
        '<a href="/password/forgot?next=/account/timebanks&login_hint=ivo@example.org">'
        "Hai dimenticato la password? Scegline una nuova</a>"
    ) in html.replace("%40", "@")


def test_too_many_reset_requests_do_not_offer_another(make_app):
    app = make_app(LOGIN_RATE_LIMIT_PER_ACCOUNT=1)
    client = app.test_client()
    for _ in range(2):
        response = client.post(
            "/password/forgot", data={"email": "ivo@example.org", "csrf_token": csrf(client)}
        )
    assert response.status_code == 429
    assert "Scegline una nuova" not in _page(response)


def test_an_unexpected_error_is_a_page_for_browsers_and_a_problem_for_clients(make_app):
    app = make_app()

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("a bug")

    client = app.test_client()
    page = client.get("/boom", headers={"Accept": BROWSER})
    assert page.status_code == 500
    assert "<h1>Qualcosa non ha funzionato</h1>" in _page(page)
    problem = client.get("/boom")
    assert problem.status_code == 500
    assert problem.mimetype == "application/problem+json"


def test_the_bare_page_answers_when_the_layout_cannot_be_drawn(make_app, tmp_path):
    missing = tmp_path / "no" / "such" / "dir" / "gateway.db"
    app = make_app(DATABASE_URL=f"sqlite:///{missing}")
    client = app.test_client()
    with client.session_transaction() as session:
        session["sid"] = "a login the database cannot look up"
    response = client.get("/account", headers={"Accept": BROWSER, "Accept-Language": "en"})
    assert response.status_code == 500
    html = response.get_data(as_text=True)
    assert "<h1>Something went wrong</h1>" in html
    assert '<a href="/">Back to the home page</a>' in html


def test_a_logged_in_member_is_offered_the_account_from_an_error(app, client):
    with app.app_context():
        member = create_member(email_verified_at=utcnow())
    log_in(client, member)
    html = _page(client.get("/account/nothing", headers={"Accept": BROWSER}))
    assert '<a href="/account">Il tuo account</a>' in html


def test_an_expired_login_form_is_opened_again_on_its_way(client):
    response = client.post("/login", data={"email": "x@example.org", "next": "/account/apps"})
    assert response.status_code == 400
    assert '<a href="/login?next=%2Faccount%2Fapps">' in _page(response)

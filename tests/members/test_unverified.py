"""Members who have not confirmed their address: they may log in and use the project's own
sites, but not authorize third-party clients; every page offers to send the link again."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from gateway.auth.models import AuthorizationCode, ClientConsent
from gateway.db import db, utcnow
from tests.auth.oidc_helpers import authorize_params, log_in, pkce_pair, query
from tests.factories import create_client, create_member
from tests.members.helpers import csrf, deliver_mail, link_in


def _world(app, verified: bool = False, locale: str = "it"):
    with app.app_context():
        member = create_member(
            email="nico@example.org",
            locale=locale,
            email_verified_at=utcnow() if verified else None,
        )
        third, _ = create_client(name="Bottega Solidale")
        website, _ = create_client(name="Milano Sei l'Altro", kind="first_party")
    return member, third.client_id, website.client_id


def _codes(app) -> int:
    with app.app_context():
        return len(db.session.scalars(select(AuthorizationCode)).all())


@pytest.mark.parametrize(
    ("language", "words"),
    [("it", "Prima conferma il tuo indirizzo"), ("en", "Confirm your address first")],
)
def test_an_unverified_member_cannot_authorize_a_third_party_client(app, client, language, words):
    member, third, _ = _world(app, locale=language)
    log_in(client, member)
    _, challenge = pkce_pair()
    params = authorize_params(third, challenge)
    page = client.get("/oauth/authorize", query_string=params)
    assert page.status_code == 403
    html = page.get_data(as_text=True)
    assert words in html
    assert "Bottega Solidale" in html
    assert 'action="/verify-email/resend"' in html
    assert 'name="csrf_token"' in html
    # The page's own offer replaces the banner's.
    assert html.count('action="/verify-email/resend"') == 1
    # Nor can a forged "allow" get around the page.
    allowed = client.post(
        "/oauth/authorize",
        query_string=params,
        data={"decision": "allow", "csrf_token": csrf(client)},
    )
    assert allowed.status_code == 403
    assert _codes(app) == 0
    with app.app_context():
        assert db.session.scalars(select(ClientConsent)).all() == []


def test_prompt_none_answers_interaction_required(app, client):
    member, third, _ = _world(app)
    log_in(client, member)
    _, challenge = pkce_pair()
    response = client.get(
        "/oauth/authorize", query_string=authorize_params(third, challenge, prompt="none")
    )
    assert response.status_code == 302
    answer = query(response.headers["Location"])
    assert answer["error"] == "interaction_required"
    assert answer["state"] == "st-123"
    assert answer["iss"] == app.config["GATEWAY_BASE_URL"]


def test_first_party_login_still_works_unverified(app, client):
    member, _, website = _world(app)
    log_in(client, member)
    _, challenge = pkce_pair()
    response = client.get("/oauth/authorize", query_string=authorize_params(website, challenge))
    assert "code" in query(response.headers["Location"])
    assert client.get("/account").status_code == 200


def test_confirming_from_the_refusal_page_leads_back_to_the_consent(app, client):
    member, third, _ = _world(app)
    log_in(client, member)
    _, challenge = pkce_pair()
    params = authorize_params(third, challenge)
    page = client.get("/oauth/authorize", query_string=params).get_data(as_text=True)
    next_url = re.search(r'name="next" value="([^"]+)"', page).group(1).replace("&amp;", "&")
    sent = client.post("/verify-email/resend", data={"next": next_url, "csrf_token": csrf(client)})
    assert sent.status_code == 302
    assert sent.headers["Location"] == next_url
    (message,) = deliver_mail(app)
    assert message["To"] == "nico@example.org"
    confirmed = client.get(link_in(message, "/verify-email"))
    assert confirmed.headers["Location"] == next_url
    consent = client.get(next_url)
    assert consent.status_code == 200
    assert "Consenti" in consent.get_data(as_text=True)


@pytest.mark.parametrize(
    ("language", "title", "button"),
    [
        ("it", "Conferma il tuo indirizzo email", "Rimanda il link di conferma"),
        ("en", "Confirm your email address", "Send the confirmation link again"),
    ],
)
def test_every_page_shows_the_banner_while_unverified(app, client, language, title, button):
    member, _, _ = _world(app, locale=language)
    log_in(client, member)
    for path in ("/", "/account", "/account/timebanks", "/account/apps", "/logout"):
        html = client.get(path).get_data(as_text=True)
        banner = re.search(r'<section class="verify-banner".*?</section>', html, re.S)
        assert banner, path
        banner = banner.group(0)
        assert 'aria-labelledby="verify-banner-title"' in banner
        assert f'<h2 id="verify-banner-title">{title}</h2>' in banner
        assert "nico@example.org" in banner
        assert f">{button}</button>" in banner
        assert 'action="/verify-email/resend"' in banner
        assert 'name="csrf_token"' in banner
        assert f'name="next" value="{path}"' in banner


def test_no_banner_for_confirmed_members_or_visitors(app, client):
    member, _, _ = _world(app, verified=True)
    assert "verify-banner" not in client.get("/").get_data(as_text=True)
    log_in(client, member)
    assert "verify-banner" not in client.get("/account").get_data(as_text=True)


def test_resend_sends_the_link_and_goes_back_with_a_message(app, client):
    member, _, _ = _world(app)
    log_in(client, member)
    back = client.post(
        "/verify-email/resend", data={"next": "/account/timebanks", "csrf_token": csrf(client)}
    )
    assert back.status_code == 302
    assert back.headers["Location"] == "/account/timebanks"
    page = client.get("/account/timebanks").get_data(as_text=True)
    assert "Ti abbiamo mandato un nuovo link a nico@example.org." in page
    (message,) = deliver_mail(app)
    assert link_in(message, "/verify-email")
    offsite = client.post(
        "/verify-email/resend", data={"next": "https://evil.example/", "csrf_token": csrf(client)}
    )
    assert offsite.headers["Location"] == "/account"


def test_resend_needs_csrf_and_is_rate_limited(make_app):
    app = make_app(LOGIN_RATE_LIMIT_PER_ACCOUNT=2)
    client = app.test_client()
    member, _, _ = _world(app)
    log_in(client, member)
    assert client.post("/verify-email/resend").status_code == 400
    codes = [
        client.post("/verify-email/resend", data={"csrf_token": csrf(client)}).status_code
        for _ in range(3)
    ]
    assert codes == [302, 302, 429]
    assert len(deliver_mail(app)) == 2


def test_resend_sends_nothing_to_a_confirmed_member(app, client):
    member, _, _ = _world(app, verified=True)
    log_in(client, member)
    client.post("/verify-email/resend", data={"csrf_token": csrf(client)})
    assert deliver_mail(app) == []

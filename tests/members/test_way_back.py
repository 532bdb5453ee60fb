"""Every flow ends back on the site the member came from: ``next`` travels through each step
(mail links included), and the gateway's header links back to a first-party site."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urlencode

import pytest

from gateway.db import utcnow
from tests.auth.oidc_helpers import authorize_params, log_in, pkce_pair, query
from tests.factories import create_client, create_member
from tests.members.helpers import csrf, deliver_mail, link_in

PASSWORD = "the old password is long"
NEW = "a brand new long password"
SITE = "https://site.example/"


@pytest.fixture
def website(app):
    """The project's website: a first-party client with its home page as post-logout URI."""
    with app.app_context():
        client, _ = create_client(
            kind="first_party",
            name="Sito del quartiere",
            post_logout_redirect_uris=[SITE],
        )
    return client


def _authorization(client_id: str) -> str:
    _, challenge = pkce_pair()
    return "/oauth/authorize?" + urlencode(authorize_params(client_id, challenge))


def _main(response) -> str:
    html = response.get_data(as_text=True)
    return unescape(html[html.index("<main") :])


def _header(response) -> str:
    html = response.get_data(as_text=True)
    return unescape(html[html.index("<header") : html.index("</header>")])


def _came_from(client, client_id: str) -> None:
    """The browser arrives through the client's authorization request."""
    response = client.get(_authorization(client_id))
    assert response.status_code == 302


def test_a_reset_started_on_a_sites_login_page_leads_back_to_the_site(app, client, website):
    with app.app_context():
        create_member(email="lia@example.org", password=PASSWORD, email_verified_at=utcnow())
    authorization = _authorization(website.client_id)
    login = client.get("/login", query_string={"next": authorization})
    forgot = re.search(r'href="(/password/forgot[^"]*)"', login.get_data(as_text=True)).group(1)
    assert query(unescape(forgot))["next"] == authorization
    page = client.get(unescape(forgot))
    assert f'name="next" value="{authorization}"' in unescape(page.get_data(as_text=True))
    client.post(
        "/password/forgot",
        data={"email": "lia@example.org", "next": authorization, "csrf_token": csrf(client)},
    )
    (message,) = deliver_mail(app)
    token = link_in(message, "/password/reset").split("token=", 1)[1]
    done = client.post(
        "/password/reset",
        data={"token": token, "password": NEW, "confirm": NEW, "csrf_token": csrf(client)},
    )
    assert done.status_code == 302
    assert done.headers["Location"] == "/password/changed?" + urlencode({"next": authorization})
    changed = _main(client.get(done.headers["Location"]))
    assert "<h1>Password cambiata</h1>" in changed
    assert f'<a class="button" href="{authorization}">Torna a Sito del quartiere</a>' in changed


def test_a_reset_without_a_site_ends_on_the_account(app, client):
    with app.app_context():
        create_member(email="ada@example.org", password=PASSWORD)
    client.post("/password/forgot", data={"email": "ada@example.org", "csrf_token": csrf(client)})
    (message,) = deliver_mail(app)
    token = link_in(message, "/password/reset").split("token=", 1)[1]
    done = client.post(
        "/password/reset",
        data={"token": token, "password": NEW, "confirm": NEW, "csrf_token": csrf(client)},
    )
    assert done.headers["Location"] == "/password/changed"
    assert 'href="/account">Vai al tuo account</a>' in _main(client.get("/password/changed"))


def test_logout_goes_back_to_the_first_party_site_the_member_came_from(app, client, website):
    with app.app_context():
        member = create_member(email_verified_at=utcnow())
    log_in(client, member)
    _came_from(client, website.client_id)
    header = _header(client.get("/account"))
    assert f'<a class="brand" href="{SITE}">' in header
    assert "Sito del quartiere</a>" in header
    # The header's logout form may lead to the site: the page's policy lets it.
    policy = client.get("/account").headers["Content-Security-Policy"]
    assert "form-action 'self' https://site.example;" in policy
    out = client.post("/logout", data={"csrf_token": csrf(client)})
    assert out.headers["Location"] == SITE
    assert client.get("/account").status_code == 302
    # Logged out, the gateway's pages still lead back to the same site.
    assert f'<a class="brand" href="{SITE}">' in _header(client.get("/login"))


def test_logout_without_a_site_says_so_on_the_login_page(app, client):
    with app.app_context():
        member = create_member()
    log_in(client, member)
    out = client.post("/logout", data={"csrf_token": csrf(client)})
    assert out.headers["Location"] == "/login"
    assert "Sei uscito dal tuo account." in _main(client.get("/login"))


def test_logout_with_next_goes_there(app, client, website):
    with app.app_context():
        member = create_member()
    log_in(client, member)
    _came_from(client, website.client_id)
    out = client.post("/logout", data={"csrf_token": csrf(client), "next": "/signup"})
    assert out.headers["Location"] == "/signup"


def test_a_third_party_app_does_not_brand_the_gateways_pages(app, client):
    with app.app_context():
        member = create_member(email_verified_at=utcnow())
        app_client, _ = create_client(name="Bottega", post_logout_redirect_uris=[SITE])
    log_in(client, member)
    client.get(_authorization(app_client.client_id))  # its consent page
    header = _header(client.get("/account"))
    assert '<a class="brand" href="/">Milano Sei l\'Altro</a>' in header
    assert "Bottega" not in header
    assert client.post("/logout", data={"csrf_token": csrf(client)}).headers["Location"] == (
        "/login"
    )


def test_the_projects_website_is_the_default_way_back(make_app):
    app = make_app(GATEWAY_SITE_URL="https://www.milanoseilaltro.it/")
    client = app.test_client()
    header = _header(client.get("/login"))
    assert '<a class="brand" href="https://www.milanoseilaltro.it/">' in header
    with app.app_context():
        member = create_member()
    log_in(client, member)
    out = client.post("/logout", data={"csrf_token": csrf(client)})
    assert out.headers["Location"] == "https://www.milanoseilaltro.it/"


def test_the_header_leads_to_every_members_page_and_logs_out_with_a_form(app, client):
    with app.app_context():
        member = create_member(locale="en")
    log_in(client, member)
    header = _header(client.get("/account/apps"))
    nav = re.search(r'<nav class="member-nav" aria-label="Your account">(.*?)</nav>', header, re.S)
    links = re.findall(r'<a href="([^"]+)"( aria-current="page")?>([^<]+)</a>', nav.group(1))
    assert [(href, text) for href, _, text in links] == [
        ("/account", "Account"),
        ("/account/timebanks", "Timebanks"),
        ("/account/hours", "My hours"),
        ("/account/data", "My data"),
        ("/account/apps", "Apps with access"),
    ]
    assert [href for href, current, _ in links if current] == ["/account/apps"]
    logout = re.search(r'<form method="post" action="/logout">(.*?)</form>', nav.group(1), re.S)
    assert 'name="csrf_token"' in logout.group(1)
    assert ">Log out</button>" in logout.group(1)
    assert client.post("/logout").status_code == 400  # the form's token is needed


def test_visitors_get_log_in_and_sign_up_keeping_the_flow(client, website):
    authorization = _authorization(website.client_id)
    header = _header(client.get("/signup", query_string={"next": authorization}))
    login = re.search(r'<a href="(/login\?[^"]+)"', header).group(1)
    assert query(login)["next"] == authorization
    assert "/account/hours" not in header


def test_the_timebanks_page_leads_back_to_the_site_as_its_main_action(app, client, website):
    with app.app_context():
        member = create_member(email_verified_at=utcnow())
    log_in(client, member)
    authorization = _authorization(website.client_id)
    page = _main(client.get("/account/timebanks", query_string={"next": authorization}))
    assert f'<a class="button" href="{authorization}">Torna a Sito del quartiere</a>' in page


def test_confirming_again_shows_the_way_back(app, client, website):
    from gateway.members.tokens import verification_token

    authorization = _authorization(website.client_id)
    with app.app_context():
        member = create_member(email_verified_at=utcnow())
        token = verification_token(member, authorization)
    page = _main(client.get("/verify-email", query_string={"token": token}))
    assert "<h1>Indirizzo confermato</h1>" in page
    assert f'<a class="button" href="{authorization}">Torna a Sito del quartiere</a>' in page


def test_confirming_the_first_time_goes_on_and_says_so_on_our_pages_only(app, client, website):
    from gateway.members.tokens import verification_token

    authorization = _authorization(website.client_id)
    with app.app_context():
        first = create_member()
        second = create_member()
        to_site = verification_token(first, authorization)
        to_us = verification_token(second)
    going = client.get("/verify-email", query_string={"token": to_site})
    assert going.headers["Location"] == authorization
    with client.session_transaction() as session:
        assert "_flashes" not in session  # it would wait for some later page
    other = app.test_client()
    staying = other.get("/verify-email", query_string={"token": to_us})
    assert staying.headers["Location"] == "/account/timebanks"
    assert "Il tuo indirizzo email è confermato." in _main(other.get("/account/timebanks"))


def test_a_browser_that_came_from_no_site_leads_to_the_site_the_member_last_used(
    app, client, website
):
    from gateway.auth.tokens import issue_token

    with app.app_context():
        member = create_member(email_verified_at=utcnow())
        issue_token(website.client_id, "openid", member_id=member.id)
        from gateway.db import db

        db.session.commit()
    log_in(client, member)  # as a mail's link opened in another browser logs in
    header = _header(client.get("/account"))
    assert f'<a class="brand" href="{SITE}">' in header
    assert client.post("/logout", data={"csrf_token": csrf(client)}).headers["Location"] == SITE

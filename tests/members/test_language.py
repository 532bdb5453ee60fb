"""The header's language switch: remembered for the browser session, saved on the member,
and the member's own word over a site's ``ui_locales`` hint."""

from __future__ import annotations

from gateway.db import db
from gateway.members.models import Member
from tests.auth.oidc_helpers import log_in
from tests.factories import create_member
from tests.members.helpers import csrf

PASSWORD = "una frase lunga abbastanza"


def _switch(client, locale: str, next_url: str = "/login"):
    return client.post(
        "/language", data={"locale": locale, "next": next_url, "csrf_token": csrf(client)}
    )


def test_every_page_offers_both_languages_in_their_own_words(client):
    html = client.get("/login", headers={"Accept-Language": "it"}).get_data(as_text=True)
    assert '<form class="language" method="post" action="/language" aria-label="Lingua">' in html
    assert 'lang="it" class="language-choice" aria-current="true">Italiano</button>' in html
    assert 'lang="en" class="language-choice">English</button>' in html
    assert '<input type="hidden" name="next" value="/login">' in html


def test_the_choice_is_remembered_and_goes_back_to_the_page(client):
    answer = _switch(client, "en", "/signup?next=/account")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/signup?next=/account"
    page = client.get("/signup", headers={"Accept-Language": "it"}).get_data(as_text=True)
    assert '<html lang="en">' in page
    # A site's hint does not undo what the member picked.
    assert "Log in" in client.get("/login?ui_locales=it").get_data(as_text=True)


def test_a_logged_in_members_choice_is_saved_for_their_mail(app, client):
    with app.app_context():
        member = create_member(locale="it")
    log_in(client, member)
    _switch(client, "en", "/account")
    with app.app_context():
        assert db.session.get(Member, member.id).locale == "en"
    assert '<html lang="en">' in client.get("/account").get_data(as_text=True)


def test_a_choice_made_before_logging_in_is_saved_at_login(app, client):
    with app.app_context():
        member = create_member(email="ciro@example.org", password=PASSWORD, locale="it")
    _switch(client, "en")
    client.post(
        "/login",
        data={"email": "ciro@example.org", "password": PASSWORD, "csrf_token": csrf(client)},
    )
    with app.app_context():
        assert db.session.get(Member, member.id).locale == "en"


def test_the_choice_outlives_logout(app, client):
    with app.app_context():
        member = create_member(locale="it")
    log_in(client, member)
    _switch(client, "en", "/account")
    client.post("/logout", data={"csrf_token": csrf(client)})
    assert '<html lang="en">' in client.get("/login?ui_locales=it").get_data(as_text=True)


def test_the_switch_refuses_forged_posts_unknown_languages_and_other_sites(app, client):
    with app.app_context():
        member = create_member(locale="it")
    log_in(client, member)
    forged = client.post("/language", data={"locale": "en", "next": "/account"})
    assert forged.status_code == 400
    unknown = _switch(client, "fr", "/account")
    assert unknown.headers["Location"] == "/account"
    with app.app_context():
        assert db.session.get(Member, member.id).locale == "it"
    offsite = _switch(client, "en", "https://evil.example/")
    assert offsite.headers["Location"] == "/"
    with app.app_context():
        assert db.session.get(Member, member.id).locale == "en"  # the last, valid, choice


def test_switching_on_a_form_with_errors_keeps_the_way_on(client):
    answer = client.post(
        "/signup", data={"email": "nope", "next": "/account/apps", "csrf_token": csrf(client)}
    )
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert '<input type="hidden" name="next" value="/signup?next=%2Faccount%2Fapps">' in html

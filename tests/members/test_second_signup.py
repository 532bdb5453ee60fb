"""Signing up again with an address that has an account: the page says nothing more than for
a new address, and the mail carries a link that finishes the signup or logs in, back to where
the member was going."""

from __future__ import annotations

from html import unescape
from urllib.parse import urlencode

from gateway.db import db, utcnow
from gateway.members.models import Member
from tests.auth.oidc_helpers import log_in, query
from tests.factories import create_member
from tests.members.helpers import csrf, deliver_mail, link_in, text_of

PASSWORD = "una frase lunga abbastanza"
NEW = "un'altra frase lunga abbastanza"
NEXT = "/oauth/authorize?client_id=x&state=s"


def _signup_again(client, email: str):
    return client.post(
        "/signup",
        data={
            "email": email,
            "display_name": "Anna",
            "password": NEW,
            "next": NEXT,
            "csrf_token": csrf(client),
        },
    )


def test_an_unconfirmed_account_is_finished_by_choosing_the_password(app, client):
    with app.app_context():
        member = create_member(email="anna@example.org", password=PASSWORD, locale="it")
    intruder = app.test_client()  # whoever opened the account, still logged in
    log_in(intruder, member)
    assert _signup_again(client, "anna@example.org").status_code == 200
    (message,) = deliver_mail(app)
    assert message["Subject"] == "Hai già un account"
    assert "non è ancora confermato" in text_of(message)
    link = link_in(message, "/password/reset")
    page = client.get(link).get_data(as_text=True)
    assert "<h1>Completa l&#39;iscrizione</h1>" in page
    done = client.post(
        "/password/reset",
        data={
            "token": link.split("token=", 1)[1],
            "password": NEW,
            "confirm": NEW,
            "csrf_token": csrf(client),
        },
    )
    assert done.headers["Location"] == "/password/changed?" + urlencode({"next": NEXT})
    assert client.get("/account").status_code == 200
    assert intruder.get("/account").status_code == 302  # their login ended
    with app.app_context():
        assert db.session.get(Member, member.id).is_verified


def test_a_confirmed_account_is_offered_the_login_with_the_address_and_a_reset(app, client):
    with app.app_context():
        create_member(
            email="bruno@example.org", password=PASSWORD, locale="en", email_verified_at=utcnow()
        )
    _signup_again(client, "bruno@example.org")
    (message,) = deliver_mail(app)
    assert message["Subject"] == "You already have an account"
    login = link_in(message, "/login")
    assert query(login) == {"login_hint": "bruno@example.org", "next": NEXT}
    form = unescape(client.get(login).get_data(as_text=True))
    assert 'value="bruno@example.org"' in form
    assert f'name="next" value="{NEXT}"' in form
    reset = link_in(message, "/password/reset")
    assert client.get(reset).status_code == 200

"""A mail link that does not work says why: cut on its way (malformed), too old (expired), or
used already / no longer fitting the account (spent), each with its own next step."""

from __future__ import annotations

import time
from html import unescape

import pytest
from itsdangerous import URLSafeTimedSerializer

from gateway.members.tokens import _fingerprint
from tests.factories import create_member
from tests.members.helpers import csrf, deliver_mail, link_in

PASSWORD = "the old password is long"
NEW = "a brand new long password"


def _aged(app, salt: str, payload: list, seconds: int) -> str:
    real_time = time.time
    try:
        time.time = lambda: real_time() - seconds
        return URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=salt).dumps(payload)
    finally:
        time.time = real_time


def _text(response) -> str:
    """The page's main content, as read."""
    html = response.get_data(as_text=True)
    return unescape(html[html.index("<main") :])


@pytest.mark.parametrize("path", ["/verify-email", "/password/reset"])
def test_a_cut_link_is_malformed_not_expired(client, path):
    for token in ("abc.def.ghi", "", "eyJ0cnVuY2F0ZWQ"):
        response = client.get(path, query_string={"token": token})
        assert response.status_code == 400
        html = _text(response)
        assert "Questo link è incompleto" in html
        assert "copialo tutto" in html
        assert "scadut" not in html


def test_an_old_confirmation_link_has_expired(app, client):
    with app.app_context():
        member = create_member(email="ada@example.org")
        token = _aged(app, "verify-email", [member.id, _fingerprint(member.email), None], 4 * 86400)
    html = _text(client.get(f"/verify-email?token={token}", headers={"Accept-Language": "en"}))
    assert "This link has expired" in html
    assert "Confirmation links last three days" in html
    assert 'href="/login"' in html


def test_an_old_reset_link_has_expired_and_offers_a_new_one(app, client):
    with app.app_context():
        member = create_member(email="bea@example.org", password=PASSWORD)
        token = _aged(
            app, "reset-password", [member.id, _fingerprint(member.password_hash), None], 7200
        )
    response = client.get(f"/password/reset?token={token}")
    assert response.status_code == 400
    html = _text(response)
    assert "Questo link è scaduto" in html
    assert "valgono un'ora" in html
    assert 'href="/password/forgot"' in html


def test_a_used_reset_link_is_spent(app, client):
    with app.app_context():
        create_member(email="cloe@example.org", password=PASSWORD)
    client.post("/password/forgot", data={"email": "cloe@example.org", "csrf_token": csrf(client)})
    (message,) = deliver_mail(app)
    link = link_in(message, "/password/reset")
    token = link.split("token=", 1)[1]
    done = client.post(
        "/password/reset",
        data={"token": token, "password": NEW, "confirm": NEW, "csrf_token": csrf(client)},
    )
    assert done.status_code == 302
    again = client.get(link)
    assert again.status_code == 400
    assert "Questo link è già stato usato" in _text(again)


def test_a_confirmation_link_for_a_changed_address_is_spent(app, client):
    from gateway.db import db
    from gateway.members.tokens import verification_token

    with app.app_context():
        member = create_member(email="dina@example.org")
        token = verification_token(member)
        member.email = "dina@elsewhere.example"
        db.session.commit()
    html = _text(client.get(f"/verify-email?token={token}"))
    assert "Questo link non vale più" in html
    assert "l'indirizzo dell'account è cambiato" in html

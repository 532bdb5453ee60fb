"""Password reset: same answer for every address, one-time expiring links, sessions ended."""

from __future__ import annotations

import time

from itsdangerous import URLSafeTimedSerializer

from gateway.db import db
from gateway.members.models import Member
from tests.factories import create_member
from tests.members.helpers import csrf, deliver_mail, link_in

PASSWORD = "the old password is long"
NEW = "a brand new long password"


def test_forgot_answers_the_same_and_mails_only_members(app, client):
    with app.app_context():
        create_member(email="lia@example.org", password=PASSWORD)
    known = client.post(
        "/password/forgot", data={"email": "lia@example.org", "csrf_token": csrf(client)}
    )
    unknown = client.post(
        "/password/forgot", data={"email": "max@example.org", "csrf_token": csrf(client)}
    )
    assert known.status_code == unknown.status_code == 200
    assert known.get_data(as_text=True).replace("lia@", "X@") == unknown.get_data(
        as_text=True
    ).replace("max@", "X@")
    messages = deliver_mail(app)
    assert [m["To"] for m in messages] == ["lia@example.org"]


def test_reset_link_sets_password_once_and_ends_other_sessions(app, client):
    with app.app_context():
        member = create_member(email="nina@example.org", password=PASSWORD)
    other = app.test_client()
    other.post(
        "/login",
        data={"email": "nina@example.org", "password": PASSWORD, "csrf_token": csrf(other)},
    )
    assert other.get("/account").status_code == 200
    client.post("/password/forgot", data={"email": "nina@example.org", "csrf_token": csrf(client)})
    (message,) = deliver_mail(app)
    link = link_in(message, "/password/reset")
    token = link.split("token=", 1)[1]
    assert client.get(link).status_code == 200
    mismatch = client.post(
        "/password/reset",
        data={"token": token, "password": NEW, "confirm": NEW + "x", "csrf_token": csrf(client)},
    )
    assert mismatch.status_code == 422
    done = client.post(
        "/password/reset",
        data={"token": token, "password": NEW, "confirm": NEW, "csrf_token": csrf(client)},
    )
    assert done.status_code == 302
    assert client.get("/account").status_code == 200
    # The other browser's session ended with the old password.
    assert other.get("/account").status_code == 302
    # The link is spent.
    assert client.get(link).status_code == 400
    with app.app_context():
        assert db.session.get(Member, member.id).email_verified_at is not None


def test_expired_and_tampered_reset_links_are_refused(app, client):
    with app.app_context():
        member = create_member(email="olga@example.org", password=PASSWORD)
        old = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="reset-password")
        from gateway.members.tokens import _fingerprint

        payload = [member.id, _fingerprint(member.password_hash)]
        real_time = time.time
        try:
            time.time = lambda: real_time() - 7200
            expired = old.dumps(payload)
        finally:
            time.time = real_time
    assert client.get(f"/password/reset?token={expired}").status_code == 400
    assert client.get("/password/reset?token=abc.def.ghi").status_code == 400


def test_reset_is_rate_limited(make_app):
    app = make_app(LOGIN_RATE_LIMIT_PER_ACCOUNT=2)
    client = app.test_client()
    codes = [
        client.post(
            "/password/forgot", data={"email": "pia@example.org", "csrf_token": csrf(client)}
        ).status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 429]

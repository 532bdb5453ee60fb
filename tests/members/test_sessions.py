"""Logins live in the database: logout, idle and age end them at once, whatever cookies exist."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from gateway.config import ConfigError, load_settings
from gateway.db import db, utcnow
from gateway.members.models import MemberSession
from tests.auth.oidc_helpers import authorize_params, log_in, pkce_pair, query
from tests.factories import create_client, create_member
from tests.members.helpers import csrf

PASSWORD = "a password long enough"


def _login(client, email: str) -> None:
    response = client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf(client)}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def _copy(app, client):
    """A second browser holding a copy of ``client``'s cookie (what a thief would have)."""
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def _logged_in(client) -> bool:
    response = client.get("/account")
    assert response.status_code in (200, 302)
    return response.status_code == 200


def _sessions(app) -> list[MemberSession]:
    with app.app_context():
        return list(db.session.scalars(select(MemberSession)))


def test_a_cookie_copied_before_logout_is_refused_after_it(app, client):
    with app.app_context():
        create_member(email="lia@example.org", password=PASSWORD)
        rp, _ = create_client(kind="first_party")
    _login(client, "lia@example.org")
    thief = _copy(app, client)
    assert _logged_in(thief)  # the copy is as good as the original while the login lasts

    client.post("/logout", data={"csrf_token": csrf(client)})

    account = thief.get("/account")
    assert account.status_code == 302
    assert account.headers["Location"].startswith("/login?")
    _, challenge = pkce_pair()
    silent = thief.get(
        "/oauth/authorize", query_string=authorize_params(rp.client_id, challenge, prompt="none")
    )
    assert query(silent.headers["Location"])["error"] == "login_required"
    assert _sessions(app) == []


def test_login_gives_a_new_id_and_ends_the_browsers_previous_login(app, client):
    with app.app_context():
        member = create_member(email="max@example.org", password=PASSWORD)
    log_in(client, member)
    before = _copy(app, client)
    _login(client, "max@example.org")
    assert client.get_cookie("session").value != before.get_cookie("session").value
    assert _logged_in(client)
    assert not _logged_in(before)  # a planted (or older) id is worth nothing after login
    assert len(_sessions(app)) == 1


def test_the_cookie_holds_only_an_id_and_the_database_only_its_hash(app, client):
    with app.app_context():
        member = create_member(email="ada@example.org", password=PASSWORD)
    _login(client, "ada@example.org")
    with client.session_transaction() as session:
        token = session["sid"]
        assert member.id not in repr(dict(session))
    (row,) = _sessions(app)
    assert row.member_id == member.id
    assert token not in row.token_hash
    assert len(row.token_hash) == 64


def test_an_idle_login_ends(make_app):
    app = make_app(SESSION_IDLE_MINUTES=30)
    client = app.test_client()
    with app.app_context():
        member = create_member()
    log_in(client, member)
    with app.app_context():
        db.session.execute(
            update(MemberSession).values(last_seen_at=utcnow() - timedelta(minutes=29))
        )
        db.session.commit()
    assert _logged_in(client)  # 29 idle minutes are within the limit, and reset it
    with app.app_context():
        db.session.execute(
            update(MemberSession).values(last_seen_at=utcnow() - timedelta(minutes=31))
        )
        db.session.commit()
    assert not _logged_in(client)
    assert _sessions(app) == []


def test_a_login_ends_at_its_absolute_lifetime_however_busy(make_app):
    app = make_app(SESSION_ABSOLUTE_HOURS=12)
    client = app.test_client()
    with app.app_context():
        member = create_member()
    log_in(client, member, auth_time=(utcnow() - timedelta(hours=11, minutes=59)).timestamp())
    assert _logged_in(client)
    with app.app_context():
        db.session.execute(
            update(MemberSession).values(authenticated_at=utcnow() - timedelta(hours=12, seconds=1))
        )
        db.session.commit()
    assert not _logged_in(client)


def test_activity_is_written_at_most_once_a_minute(app, client):
    with app.app_context():
        member = create_member()
    log_in(client, member)
    ten_seconds_ago = utcnow() - timedelta(seconds=10)
    two_minutes_ago = utcnow() - timedelta(minutes=2)
    with app.app_context():
        db.session.execute(update(MemberSession).values(last_seen_at=ten_seconds_ago))
        db.session.commit()
    assert _logged_in(client)
    assert _sessions(app)[0].last_seen_at == ten_seconds_ago
    with app.app_context():
        db.session.execute(update(MemberSession).values(last_seen_at=two_minutes_ago))
        db.session.commit()
    assert _logged_in(client)
    assert _sessions(app)[0].last_seen_at > ten_seconds_ago


def test_the_admin_page_uses_the_same_logins(app, client):
    with app.app_context():
        create_member(email="op@example.org", password=PASSWORD, is_admin=True)
    _login(client, "op@example.org")
    thief = _copy(app, client)
    assert client.get("/admin").status_code == 200
    client.post("/logout", data={"csrf_token": csrf(client)})
    assert thief.get("/admin").headers["Location"].startswith("/login?")
    api = thief.get("/admin/api/platforms")
    assert api.status_code == 401


def test_logout_keeps_the_language_and_drops_the_rest(app, client):
    with app.app_context():
        member = create_member()
    client.get("/login?ui_locales=en")
    log_in(client, member)
    token = csrf(client)
    client.post("/logout", data={"csrf_token": token})
    with client.session_transaction() as session:
        assert session.get("locale") == "en"
        assert "sid" not in session
        assert session.get("csrf") != token


def test_ended_logins_are_pruned(make_app):
    from gateway.auth.session import prune_sessions

    app = make_app(SESSION_IDLE_MINUTES=30, SESSION_ABSOLUTE_HOURS=12)
    with app.app_context():
        members = [create_member() for _ in range(3)]
    for member in members:
        log_in(app.test_client(), member)
    with app.app_context():
        rows = {row.member_id: row.id for row in db.session.scalars(select(MemberSession))}
        db.session.execute(
            update(MemberSession)
            .where(MemberSession.id == rows[members[0].id])
            .values(last_seen_at=utcnow() - timedelta(minutes=31))
        )
        db.session.execute(
            update(MemberSession)
            .where(MemberSession.id == rows[members[1].id])
            .values(authenticated_at=utcnow() - timedelta(hours=13))
        )
        db.session.commit()
        assert prune_sessions() == 2
        assert [row.member_id for row in db.session.scalars(select(MemberSession))] == [
            members[2].id
        ]


def test_session_lifetimes_are_settings(tmp_path):
    base = {"GATEWAY_DATA_DIR": str(tmp_path)}
    settings = load_settings({**base, "SESSION_IDLE_MINUTES": "45", "SESSION_ABSOLUTE_HOURS": "8"})
    assert settings["SESSION_IDLE_MINUTES"] == 45
    assert settings["SESSION_ABSOLUTE_HOURS"] == 8
    # Flask's cookie does not outlive the longest login either.
    assert settings["PERMANENT_SESSION_LIFETIME"] == timedelta(hours=8)
    defaults = load_settings(base)
    assert (defaults["SESSION_IDLE_MINUTES"], defaults["SESSION_ABSOLUTE_HOURS"]) == (30, 12)
    with pytest.raises(ConfigError, match="SESSION_IDLE_MINUTES must be at least 1"):
        load_settings({**base, "SESSION_IDLE_MINUTES": "0"})
    with pytest.raises(ConfigError, match="SESSION_ABSOLUTE_HOURS must be a whole number"):
        load_settings({**base, "SESSION_ABSOLUTE_HOURS": "a day"})


def test_log_out_everywhere_ends_every_browser_of_the_member_only(app, client):
    with app.app_context():
        create_member(email="lia@example.org", password=PASSWORD)
        create_member(email="ugo@example.org", password=PASSWORD)
    _login(client, "lia@example.org")
    phone = app.test_client()
    _login(phone, "lia@example.org")
    neighbour = app.test_client()
    _login(neighbour, "ugo@example.org")
    page = client.get("/account").get_data(as_text=True)
    assert "aperto ora: 2" in page  # Italian: the community's default language

    done = client.post("/account/logout-everywhere", data={"csrf_token": csrf(client)})

    assert done.status_code == 302
    assert done.headers["Location"] == "/login"
    assert not _logged_in(client)
    assert not _logged_in(phone)
    assert _logged_in(neighbour)
    assert len(_sessions(app)) == 1  # the neighbour's


def test_log_out_everywhere_needs_a_post_with_its_csrf_token(app, client):
    with app.app_context():
        create_member(email="lia@example.org", password=PASSWORD)
    _login(client, "lia@example.org")

    assert client.get("/account/logout-everywhere").status_code == 405
    forged = client.post("/account/logout-everywhere", data={})
    assert forged.status_code == 400
    assert _logged_in(client)


def test_log_out_everywhere_asks_a_stranger_to_log_in(client):
    response = client.post("/account/logout-everywhere", data={"csrf_token": csrf(client)})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?")

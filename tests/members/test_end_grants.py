"""A password reset and an operator's disable end every login, token and pending code of the
member at once; a reset takes an account back from whoever opened it with the owner's address."""

from __future__ import annotations

import secrets

from click.testing import CliRunner
from sqlalchemy import select

from gateway.admin.models import AdminAction
from gateway.auth.models import ClientConsent
from gateway.cli import main
from gateway.db import db, utcnow
from gateway.members.models import Member
from tests.auth.oidc_helpers import REDIRECT, authorize_params, pkce_pair, query
from tests.factories import create_client, create_member
from tests.members.helpers import csrf, deliver_mail, link_in

PASSWORD = "the first long password"
NEW = "the owner's new long password"
SCOPE = "openid email offline_access hours:read"


def _login(client, email: str, password: str = PASSWORD):
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf(client)}
    )


def _code(client, rp_id: str) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    response = client.get(
        "/oauth/authorize",
        query_string=authorize_params(rp_id, challenge, scope=SCOPE, nonce=secrets.token_hex(8)),
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return query(response.headers["Location"])["code"], verifier


def _exchange(client, rp_id: str, secret: str, code: str, verifier: str):
    return client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=(rp_id, secret),
    )


def _tokens(client, rp_id: str, secret: str) -> dict:
    response = _exchange(client, rp_id, secret, *_code(client, rp_id))
    assert response.status_code == 200, response.json
    return response.json


def _works(client, rp_id: str, secret: str, tokens: dict) -> tuple[bool, bool]:
    """Whether the access token is accepted, and whether the refresh token is."""
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    access = client.get("/oauth/userinfo", headers=bearer).status_code
    refresh = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(rp_id, secret),
    )
    assert access in (200, 401)
    assert refresh.status_code in (200, 400)
    return access == 200, refresh.status_code == 200


def _reset_password(app, client, email: str, password: str) -> None:
    client.post("/password/forgot", data={"email": email, "csrf_token": csrf(client)})
    link = link_in(deliver_mail(app)[-1], "/password/reset")
    token = link.split("token=", 1)[1]
    done = client.post(
        "/password/reset",
        data={
            "token": token,
            "password": password,
            "confirm": password,
            "csrf_token": csrf(client),
        },
    )
    assert done.status_code == 302, done.get_data(as_text=True)


def test_a_reset_ends_every_token_and_login_of_the_member(app, client):
    with app.app_context():
        create_member(email="rita@example.org", password=PASSWORD, email_verified_at=utcnow())
        website, website_secret = create_client(scope=SCOPE, kind="first_party")
        other_rp, other_secret = create_client(scope=SCOPE, kind="first_party")
    phone, laptop = app.test_client(), app.test_client()
    _login(phone, "rita@example.org")
    _login(laptop, "rita@example.org")
    first = _tokens(phone, website.client_id, website_secret)
    # A second family of the same client, rotated once, and a family of another client.
    second = _tokens(laptop, website.client_id, website_secret)
    rotated = laptop.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]},
        auth=(website.client_id, website_secret),
    ).json
    third = _tokens(laptop, other_rp.client_id, other_secret)
    pending_code = _code(laptop, website.client_id)

    _reset_password(app, client, "rita@example.org", NEW)

    assert _works(client, website.client_id, website_secret, first) == (False, False)
    assert _works(client, website.client_id, website_secret, rotated) == (False, False)
    assert _works(client, other_rp.client_id, other_secret, third) == (False, False)
    # A code handed out just before the reset is not turned into tokens after it.
    late = _exchange(client, website.client_id, website_secret, *pending_code)
    assert late.json["error"] == "invalid_grant"
    assert phone.get("/account").status_code == 302
    assert laptop.get("/account").status_code == 302
    # The browser that reset the password is logged in, and new tokens work.
    assert client.get("/account").status_code == 200
    fresh = _tokens(client, website.client_id, website_secret)
    assert _works(client, website.client_id, website_secret, fresh) == (True, True)


def test_the_owner_of_an_address_takes_the_account_back_with_a_reset(app):
    """Pre-account takeover: someone signs up with another person's address first."""
    with app.app_context():
        website, secret = create_client(scope=SCOPE, kind="first_party")
        app_of_attacker, _ = create_client(scope=SCOPE, name="Attacker's app")
    attacker, owner = app.test_client(), app.test_client()
    signup = attacker.post(
        "/signup",
        data={
            "email": "owner@example.org",
            "display_name": "Not the owner",
            "password": PASSWORD,
            "locale": "it",
            "csrf_token": csrf(attacker),
        },
    )
    assert signup.status_code == 200
    deliver_mail(app)  # the confirmation goes to the owner's mailbox, unread
    assert _login(attacker, "owner@example.org").status_code == 302
    stolen = _tokens(attacker, website.client_id, secret)
    with app.app_context():
        member = db.session.scalar(select(Member).where(Member.email == "owner@example.org"))
        # A consent given while nobody had proved the address (e.g. before this rule).
        db.session.add(
            ClientConsent(member_id=member.id, client_id=app_of_attacker.client_id, scope="openid")
        )
        db.session.commit()

    _reset_password(app, owner, "owner@example.org", NEW)

    assert _works(owner, website.client_id, secret, stolen) == (False, False)
    assert attacker.get("/account").status_code == 302
    assert _login(attacker, "owner@example.org").status_code == 401
    with app.app_context():
        member = db.session.get(Member, member.id)
        assert member.email_verified_at is not None
        assert db.session.scalars(select(ClientConsent)).all() == []
    assert owner.get("/account").status_code == 200


def test_a_reset_keeps_the_consents_a_confirmed_member_gave(app, client):
    with app.app_context():
        member = create_member(
            email="sara@example.org", password=PASSWORD, email_verified_at=utcnow()
        )
        rp, _ = create_client(scope=SCOPE)
        db.session.add(ClientConsent(member_id=member.id, client_id=rp.client_id, scope="openid"))
        db.session.commit()
    _reset_password(app, client, "sara@example.org", NEW)
    with app.app_context():
        assert len(db.session.scalars(select(ClientConsent)).all()) == 1


def _cli(app_config, *args):
    env = {
        "DATABASE_URL": app_config["DATABASE_URL"],
        "GATEWAY_DATA_DIR": app_config["GATEWAY_DATA_DIR"],
        "SECRET_KEY": app_config["SECRET_KEY"],
    }
    return CliRunner().invoke(main, list(args), env=env)


def test_disable_ends_everything_and_enable_lets_the_member_log_in_again(app, app_config, client):
    with app.app_context():
        member = create_member(
            email="ugo@example.org", password=PASSWORD, email_verified_at=utcnow()
        )
        rp, secret = create_client(scope=SCOPE, kind="first_party")
    _login(client, "ugo@example.org")
    tokens = _tokens(client, rp.client_id, secret)

    refused = _cli(app_config, "members", "disable", "ugo@example.org")
    assert refused.exit_code == 2  # a reason is required
    done = _cli(app_config, "members", "disable", "UGO@example.org", "--reason", "reported abuse")
    assert done.exit_code == 0, done.output

    assert client.get("/account").status_code == 302
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/oauth/userinfo", headers=bearer).status_code == 401
    assert _login(client, "ugo@example.org").status_code == 401

    again = _cli(app_config, "members", "enable", member.id, "--reason", "cleared")
    assert again.exit_code == 0, again.output
    assert _login(client, "ugo@example.org").status_code == 302
    # What the disable ended stays ended.
    assert _works(client, rp.client_id, secret, tokens) == (False, False)
    with app.app_context():
        audit = db.session.scalars(select(AdminAction).order_by(AdminAction.created_at)).all()
        assert [(a.action, a.target_id, a.reason, a.actor) for a in audit] == [
            ("member.disable", member.id, "reported abuse", "cli"),
            ("member.enable", member.id, "cleared", "cli"),
        ]


def test_disable_and_enable_refuse_what_they_cannot_do(app, app_config):
    with app.app_context():
        create_member(email="vera@example.org")
        create_member(email="gone@example.org", status="erased")
    unknown = _cli(app_config, "members", "disable", "nobody@example.org", "--reason", "x")
    assert unknown.exit_code == 2
    assert "no member" in unknown.output
    erased = _cli(app_config, "members", "disable", "gone@example.org", "--reason", "x")
    assert erased.exit_code == 2
    active = _cli(app_config, "members", "enable", "vera@example.org", "--reason", "x")
    assert active.exit_code == 2
    assert "not disabled" in active.output
    with app.app_context():
        assert db.session.scalars(select(AdminAction)).all() == []

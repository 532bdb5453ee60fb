"""Refresh-token families: rotation never extends a grant past its absolute lifetime, and
introspection describes a refresh token by whether it can still be exchanged."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import update

from gateway.auth.models import OAuthToken, token_digest
from gateway.config import ConfigError, load_settings
from gateway.db import db
from tests.auth.oidc_helpers import REDIRECT, authorize_params, log_in, pkce_pair, query
from tests.factories import create_client, create_member

FAMILY_MAX = 3600


@pytest.fixture
def app(make_app):
    return make_app(OAUTH_REFRESH_FAMILY_MAX_SECONDS=FAMILY_MAX)


@pytest.fixture
def grant(app, client) -> dict:
    """A member's tokens (with a refresh token) for a first-party client."""
    with app.app_context():
        member = create_member()
        rp, secret = create_client(scope="openid offline_access hours:read", kind="first_party")
    log_in(client, member)
    verifier, challenge = pkce_pair()
    params = authorize_params(rp.client_id, challenge, scope="openid offline_access")
    code = query(client.get("/oauth/authorize", query_string=params).headers["Location"])["code"]
    auth = (rp.client_id, secret)
    tokens = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=auth,
    ).json
    return {"auth": auth, **tokens}


def _refresh(client, grant: dict, refresh_token: str):
    return client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=grant["auth"],
    )


def _introspect(client, grant: dict, token: str, hint: str | None = None) -> dict:
    data = {"token": token, **({"token_type_hint": hint} if hint else {})}
    return client.post("/oauth/introspect", data=data, auth=grant["auth"]).json


def _age(app, refresh_token: str, *, issued: int = 0, family: int = 0) -> None:
    """Move a token's issue time and its family's start ``issued``/``family`` seconds back."""
    with app.app_context():
        row = db.session.query(OAuthToken).filter_by(refresh_token_hash=token_digest(refresh_token))
        db.session.execute(
            update(OAuthToken)
            .where(OAuthToken.family_id == row.one().family_id)
            .values(
                issued_at=OAuthToken.issued_at - issued,
                family_issued_at=OAuthToken.family_issued_at - family,
            )
        )
        db.session.commit()


def test_the_setting_is_read_and_checked(tmp_path):
    base = {"GATEWAY_DATA_DIR": str(tmp_path)}
    assert load_settings(base)["OAUTH_REFRESH_FAMILY_MAX_SECONDS"] == 30 * 24 * 3600
    read = load_settings({**base, "OAUTH_REFRESH_FAMILY_MAX_SECONDS": "86400"})
    assert read["OAUTH_REFRESH_FAMILY_MAX_SECONDS"] == 86400
    with pytest.raises(ConfigError, match="OAUTH_REFRESH_FAMILY_MAX_SECONDS must be"):
        load_settings({**base, "OAUTH_REFRESH_FAMILY_MAX_SECONDS": "forever"})


def test_rotation_keeps_the_familys_start(app, client, grant):
    # The grant began 1000 s ago: every rotated token ends when the family does.
    _age(app, grant["refresh_token"], family=1000)
    rotated = _refresh(client, grant, grant["refresh_token"])
    assert rotated.status_code == 200, rotated.json
    described = _introspect(client, grant, rotated.json["refresh_token"], "refresh_token")
    assert described["active"] is True
    family_end = described["exp"]
    assert family_end <= time.time() + FAMILY_MAX - 1000 + 5
    again = _refresh(client, grant, rotated.json["refresh_token"]).json
    assert _introspect(client, grant, again["refresh_token"])["exp"] == family_end


def test_a_family_past_its_lifetime_cannot_be_refreshed(app, client, grant):
    rotated = _refresh(client, grant, grant["refresh_token"]).json
    _age(app, rotated["refresh_token"], family=FAMILY_MAX + 1)
    refused = _refresh(client, grant, rotated["refresh_token"])
    assert refused.status_code == 400
    assert refused.json["error"] == "invalid_grant"
    assert _introspect(client, grant, rotated["refresh_token"]) == {"active": False}


def test_refresh_token_stays_active_after_its_access_token_expired(app, client, grant):
    _age(app, grant["refresh_token"], issued=2 * 3600)
    assert _introspect(client, grant, grant["access_token"]) == {"active": False}
    # Whatever the hint says, a refresh token is described as one.
    for hint in (None, "refresh_token", "access_token"):
        described = _introspect(client, grant, grant["refresh_token"], hint)
        assert described["active"] is True, hint
        assert described["exp"] > time.time()
        assert "token_type" not in described  # not an access token
    assert _refresh(client, grant, grant["refresh_token"]).status_code == 200


def test_a_used_or_revoked_refresh_token_is_inactive(app, client, grant):
    rotated = _refresh(client, grant, grant["refresh_token"]).json
    assert _introspect(client, grant, grant["refresh_token"]) == {"active": False}
    client.post(
        "/oauth/revoke",
        data={"token": rotated["refresh_token"], "token_type_hint": "refresh_token"},
        auth=grant["auth"],
    )
    assert _introspect(client, grant, rotated["refresh_token"]) == {"active": False}

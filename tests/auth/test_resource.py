"""Bearer-token protection of API routes: scopes, expiry, revocation, problem+json."""

from __future__ import annotations

import time

import pytest
from flask import jsonify
from sqlalchemy import select

from gateway.auth.models import OAuthClient, OAuthToken
from gateway.auth.resource import current_member, current_token, require_oauth
from gateway.db import db, utcnow
from tests.factories import bearer_headers, create_member


@pytest.fixture
def protected(app):
    @app.get("/api/v1/_probe")
    @require_oauth("hours:read")
    def probe():
        member = current_member()
        return jsonify(client=current_token.client_id, member=member.id if member else None)

    return app.test_client()


def test_valid_token_with_scope_passes(app, protected):
    with app.app_context():
        member = create_member()
        headers = bearer_headers("hours:read", member)
    response = protected.get("/api/v1/_probe", headers=headers)
    assert response.status_code == 200
    assert response.get_json()["member"] == member.id


@pytest.mark.parametrize("authorization", [None, "Basic dXNlcjpwYXNz"])
def test_missing_token_is_401_problem_with_a_bare_challenge(protected, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = protected.get("/api/v1/_probe", headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    # RFC 6750 section 3.1: no error code when the request carried no bearer token.
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="gateway"'


def test_unknown_token_is_401_with_invalid_token(protected):
    response = protected.get("/api/v1/_probe", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.get_json()["type"].endswith("/invalid-token")
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="gateway", error="invalid_token"')
    assert "error_description=" in challenge


def test_wrong_scope_is_403_naming_the_scope_needed(app, protected):
    with app.app_context():
        headers = bearer_headers("transactions:write")
    response = protected.get("/api/v1/_probe", headers=headers)
    assert response.status_code == 403
    body = response.get_json()
    assert body["type"].endswith("/insufficient-scope")
    assert body["scope"] == "hours:read"
    assert "hours:read" in body["detail"]
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="gateway", error="insufficient_scope"')
    assert challenge.endswith('scope="hours:read"')


def test_expired_token_is_refused(app, protected):
    with app.app_context():
        headers = bearer_headers("hours:read", expires_in=1)
        token = db.session.scalar(select(OAuthToken))
        token.issued_at = int(time.time()) - 10
        db.session.commit()
    assert protected.get("/api/v1/_probe", headers=headers).status_code == 401


def test_revoked_token_is_refused(app, protected):
    with app.app_context():
        headers = bearer_headers("hours:read")
        db.session.scalar(select(OAuthToken)).revoked_at = int(time.time())
        db.session.commit()
    assert protected.get("/api/v1/_probe", headers=headers).status_code == 401


def test_token_of_revoked_client_is_refused(app, protected):
    with app.app_context():
        headers = bearer_headers("hours:read")
        db.session.scalar(select(OAuthClient)).revoked_at = utcnow()
        db.session.commit()
    assert protected.get("/api/v1/_probe", headers=headers).status_code == 401


def test_token_of_disabled_member_is_refused(app, protected):
    with app.app_context():
        member = create_member()
        headers = bearer_headers("hours:read", member)
        member.status = "disabled"
        db.session.commit()
    assert protected.get("/api/v1/_probe", headers=headers).status_code == 401


def test_tokens_are_stored_only_as_hashes(app):
    with app.app_context():
        headers = bearer_headers("hours:read")
        raw = headers["Authorization"].split()[1]
        row = db.session.scalar(select(OAuthToken))
        assert raw not in (row.access_token_hash, row.refresh_token_hash)


def test_a_read_scope_route_names_the_first_scope_that_would_do(app, client):
    from gateway.ledger import services as ledger

    with app.app_context():
        member = create_member()
        account = ledger.account_for_member(member.id).id
        db.session.commit()
        headers = bearer_headers("transactions:write", member)
    response = client.get(f"/api/v1/accounts/{account}", headers=headers)
    assert response.status_code == 403
    body = response.get_json()
    assert body["scope"] == "hours:read"
    assert body["scopes_accepted"] == ["hours:read", "admin"]
    assert response.headers["WWW-Authenticate"].endswith('scope="hours:read"')


def test_userinfo_challenges_a_client_token_for_openid(app, client):
    # A client-credentials token has no member: it never acts with openid.
    with app.app_context():
        headers = bearer_headers("openid hours:read")
    response = client.get("/oauth/userinfo", headers=headers)
    assert response.status_code == 403
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="gateway", error="insufficient_scope", '
        'error_description="This request needs a token with scope openid.", scope="openid"'
    )
    assert response.get_json()["scope"] == "openid"


def test_userinfo_answers_401_with_invalid_token(client):
    response = client.get("/oauth/userinfo", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_api_refusals_carry_the_challenge(app, client):
    with app.app_context():
        headers = bearer_headers("hours:read")  # the website's own token: no member
    response = client.get("/api/v1/members/me", headers=headers)
    assert response.status_code == 403
    assert response.get_json()["code"] == "member_token_required"
    assert response.headers["WWW-Authenticate"].startswith(
        'Bearer realm="gateway", error="insufficient_scope", error_description="'
    )

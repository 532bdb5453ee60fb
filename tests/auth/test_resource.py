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


def test_missing_token_is_401_problem_with_challenge(protected):
    response = protected.get("/api/v1/_probe")
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_unknown_token_is_401(protected):
    response = protected.get("/api/v1/_probe", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.get_json()["type"].endswith("invalid_token")


def test_wrong_scope_is_403(app, protected):
    with app.app_context():
        headers = bearer_headers("transactions:write")
    response = protected.get("/api/v1/_probe", headers=headers)
    assert response.status_code == 403
    assert response.get_json()["type"].endswith("insufficient_scope")


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

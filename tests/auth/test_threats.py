"""RFC 9700 threats the provider must refuse, each by the answer the spec asks for."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import update

from gateway.auth.models import AuthorizationCode
from gateway.db import db
from tests.auth.oidc_helpers import REDIRECT, authorize_params, log_in, pkce_pair, query
from tests.factories import create_client, create_member


@pytest.fixture
def setup(app, client):
    with app.app_context():
        member = create_member()
        confidential, secret = create_client(
            scope="openid profile email offline_access hours:read", kind="first_party"
        )
        public, _ = create_client(
            scope="openid profile email offline_access",
            kind="first_party",
            is_public=True,
            secret_hash=None,
            grant_types=["authorization_code", "refresh_token"],
        )
    log_in(client, member)
    return {
        "member": member,
        "client_id": confidential.client_id,
        "secret": secret,
        "public_id": public.client_id,
    }


def _authorize(client, client_id, challenge=None, **extra):
    return client.get(
        "/oauth/authorize", query_string=authorize_params(client_id, challenge, **extra)
    )


def _exchange(client, code, verifier=None, auth=None, **extra):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, **extra}
    if verifier:
        data["code_verifier"] = verifier
    return client.post("/oauth/token", data=data, auth=auth)


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://site.example/callback/",
        "https://site.example/callback?x=1",
        "https://site.example/callback#frag",
        "https://SITE.example/callback",
        "http://site.example/callback",
        "https://site.example.evil.org/callback",
        "https://site.example/callback/../evil",
        "https://evil.org/callback",
    ],
)
def test_redirect_uri_variations_are_shown_as_a_page_never_redirected_to(
    client, setup, redirect_uri
):
    _, challenge = pkce_pair()
    response = _authorize(client, setup["client_id"], challenge, redirect_uri=redirect_uri)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.mimetype == "text/html"


def test_unknown_client_is_a_page(client, setup):
    response = _authorize(client, "no-such-client", pkce_pair()[1])
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_public_client_without_pkce_is_refused(client, setup):
    response = _authorize(client, setup["public_id"], None)
    params = query(response.headers["Location"])
    assert params["error"] == "invalid_request"
    assert "code" not in params


def test_plain_pkce_is_refused(client, setup):
    verifier, _ = pkce_pair()
    for extra in ({"code_challenge_method": "plain"}, {}):
        response = _authorize(client, setup["public_id"], None, code_challenge=verifier, **extra)
        assert query(response.headers["Location"])["error"] == "invalid_request"


def test_public_client_code_needs_the_verifier(client, setup):
    verifier, challenge = pkce_pair()
    code = query(_authorize(client, setup["public_id"], challenge).headers["Location"])["code"]
    missing = _exchange(client, code, client_id=setup["public_id"])
    assert missing.status_code == 400
    code = query(_authorize(client, setup["public_id"], challenge, nonce="n2").headers["Location"])[
        "code"
    ]
    wrong = _exchange(client, code, verifier=pkce_pair()[0], client_id=setup["public_id"])
    assert wrong.json["error"] == "invalid_grant"
    code = query(_authorize(client, setup["public_id"], challenge, nonce="n3").headers["Location"])[
        "code"
    ]
    right = _exchange(client, code, verifier=verifier, client_id=setup["public_id"])
    assert right.status_code == 200, right.json


def test_verifier_without_challenge_is_refused(client, setup):
    code = query(_authorize(client, setup["client_id"], None).headers["Location"])["code"]
    response = _exchange(
        client, code, verifier=pkce_pair()[0], auth=(setup["client_id"], setup["secret"])
    )
    assert response.status_code == 400


def test_code_replay_is_refused_and_revokes_the_tokens_it_issued(client, setup):
    verifier, challenge = pkce_pair()
    code = query(
        _authorize(client, setup["client_id"], challenge, scope="openid offline_access").headers[
            "Location"
        ]
    )["code"]
    auth = (setup["client_id"], setup["secret"])
    first = _exchange(client, code, verifier=verifier, auth=auth)
    assert first.status_code == 200
    bearer = {"Authorization": f"Bearer {first.json['access_token']}"}
    assert client.get("/oauth/userinfo", headers=bearer).status_code == 200
    replay = _exchange(client, code, verifier=verifier, auth=auth)
    assert replay.json["error"] == "invalid_grant"
    assert client.get("/oauth/userinfo", headers=bearer).status_code == 401
    refresh = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": first.json["refresh_token"]},
        auth=auth,
    )
    assert refresh.json["error"] == "invalid_grant"


def test_wrong_client_secret_is_refused(client, setup):
    verifier, challenge = pkce_pair()
    code = query(_authorize(client, setup["client_id"], challenge).headers["Location"])["code"]
    response = _exchange(client, code, verifier=verifier, auth=(setup["client_id"], "wrong"))
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"


def test_code_of_another_client_is_refused(app, client, setup):
    verifier, challenge = pkce_pair()
    code = query(_authorize(client, setup["client_id"], challenge).headers["Location"])["code"]
    with app.app_context():
        other, other_secret = create_client(scope="openid")
    response = _exchange(client, code, verifier=verifier, auth=(other.client_id, other_secret))
    assert response.json["error"] == "invalid_grant"


def test_expired_code_is_refused(app, client, setup):
    verifier, challenge = pkce_pair()
    code = query(_authorize(client, setup["client_id"], challenge).headers["Location"])["code"]
    with app.app_context():
        db.session.execute(update(AuthorizationCode).values(issued_at=int(time.time()) - 3600))
        db.session.commit()
    response = _exchange(
        client, code, verifier=verifier, auth=(setup["client_id"], setup["secret"])
    )
    assert response.json["error"] == "invalid_grant"


def test_redirect_uri_must_match_at_the_token_endpoint(client, setup):
    verifier, challenge = pkce_pair()
    code = query(_authorize(client, setup["client_id"], challenge).headers["Location"])["code"]
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "https://site.example/other",
            "code_verifier": verifier,
        },
        auth=(setup["client_id"], setup["secret"]),
    )
    assert response.json["error"] == "invalid_grant"


def test_scope_beyond_the_client_is_refused(client, setup):
    response = _authorize(client, setup["client_id"], pkce_pair()[1], scope="openid admin")
    assert query(response.headers["Location"])["error"] == "invalid_scope"


def test_refresh_cannot_widen_scope(client, setup):
    verifier, challenge = pkce_pair()
    code = query(
        _authorize(client, setup["client_id"], challenge, scope="openid offline_access").headers[
            "Location"
        ]
    )["code"]
    auth = (setup["client_id"], setup["secret"])
    tokens = _exchange(client, code, verifier=verifier, auth=auth).json
    wider = client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "scope": "openid offline_access hours:read",
        },
        auth=auth,
    )
    assert wider.json["error"] == "invalid_scope"


def test_revoked_client_cannot_use_its_tokens(app, client, setup):
    verifier, challenge = pkce_pair()
    code = query(_authorize(client, setup["client_id"], challenge).headers["Location"])["code"]
    tokens = _exchange(
        client, code, verifier=verifier, auth=(setup["client_id"], setup["secret"])
    ).json
    from gateway.auth.clients import revoke_client

    with app.app_context():
        revoke_client(setup["client_id"])
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/oauth/userinfo", headers=bearer).status_code == 401


def test_openid_request_without_redirect_uri_is_a_page(client, setup):
    # OIDC Core 3.1.2.1: required even though the client registered only one URI.
    params = authorize_params(setup["client_id"], pkce_pair()[1])
    del params["redirect_uri"]
    response = client.get("/oauth/authorize", query_string=params)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.mimetype == "text/html"
    assert "redirect_uri" in response.get_data(as_text=True)


def test_plain_oauth_request_may_default_to_the_one_registered_uri(client, setup):
    params = authorize_params(setup["client_id"], pkce_pair()[1], scope="hours:read")
    del params["redirect_uri"]
    response = client.get("/oauth/authorize", query_string=params)
    assert response.status_code == 302
    assert response.headers["Location"].startswith(REDIRECT + "?")
    assert "code" in query(response.headers["Location"])

"""A stock OAuth client library (requests-oauthlib) and JWT library (PyJWT), written elsewhere,
complete discovery, code + PKCE, token, ID token verification, userinfo, refresh and
revocation against the gateway served on a real port."""

from __future__ import annotations

import secrets

import jwt
import pytest
import requests
from requests_oauthlib import OAuth2Session

from tests.factories import create_client, create_member
from tests.live import LiveServer, browser_login, follow_until

PASSWORD = "a long enough password 42"
CALLBACK = "https://rp.example/callback"


@pytest.fixture
def live(make_app, unused_port, monkeypatch):
    # oauthlib refuses http endpoints unless told this is a test on loopback.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    app = make_app(GATEWAY_BASE_URL=f"http://127.0.0.1:{unused_port}")
    with LiveServer(app, unused_port) as server:
        yield server


def test_stock_client_full_round_trip(live):
    with live.app.app_context():
        member = create_member(password=PASSWORD)
        rp, secret = create_client(
            scope="openid profile email offline_access hours:read",
            redirect_uris=[CALLBACK],
            kind="first_party",
        )
    metadata = requests.get(f"{live.url}/.well-known/openid-configuration", timeout=5).json()
    assert metadata["issuer"] == live.url

    oauth = OAuth2Session(
        rp.client_id,
        redirect_uri=CALLBACK,
        scope="openid profile email offline_access hours:read",
        pkce="S256",
    )
    nonce = secrets.token_urlsafe(16)
    url, state = oauth.authorization_url(metadata["authorization_endpoint"], nonce=nonce)

    browser = requests.Session()
    browser_login(browser, live.url, member.email, PASSWORD)
    location = follow_until(browser, url, CALLBACK)
    assert f"state={state}" in location

    token = oauth.fetch_token(
        metadata["token_endpoint"], authorization_response=location, client_secret=secret
    )
    signing_key = jwt.PyJWKClient(metadata["jwks_uri"]).get_signing_key_from_jwt(token["id_token"])
    claims = jwt.decode(
        token["id_token"],
        signing_key.key,
        algorithms=metadata["id_token_signing_alg_values_supported"],
        audience=rp.client_id,
        issuer=metadata["issuer"],
    )
    assert claims["sub"] == member.id
    assert claims["nonce"] == nonce
    assert claims["email"] == member.email

    info = oauth.get(metadata["userinfo_endpoint"]).json()
    assert info["sub"] == member.id

    refreshed = oauth.refresh_token(metadata["token_endpoint"], auth=(rp.client_id, secret))
    assert refreshed["access_token"] != token["access_token"]
    assert oauth.get(metadata["userinfo_endpoint"]).status_code == 200

    revoked = requests.post(
        metadata["revocation_endpoint"],
        data={"token": refreshed["refresh_token"], "token_type_hint": "refresh_token"},
        auth=(rp.client_id, secret),
        timeout=5,
    )
    assert revoked.status_code == 200
    assert oauth.get(metadata["userinfo_endpoint"]).status_code == 401

"""An OpenID-certified relying-party library (pyoidc, the ``oic`` package) against the gateway
served on a real port: discovery, code + PKCE (S256) with ID-token validation, userinfo,
refresh, and client credentials with ``client_secret_basic`` and ``client_secret_post``.

The library performs the protocol: it reads discovery and the JWKS, builds the requests,
authenticates, and validates the ID token's signature, issuer, audience, expiry and nonce. The
test only drives it, and stands in for the browser (there is none) by filling the login form.
"""

from __future__ import annotations

import pytest
import requests
from oic import rndstr
from oic.oauth2.message import CCAccessTokenRequest
from oic.oic import Client
from oic.oic.message import (
    AccessTokenResponse,
    AuthorizationResponse,
    IdToken,
    OpenIDSchema,
    RegistrationResponse,
)
from oic.utils.authn.client import CLIENT_AUTHN_METHOD

from tests.factories import create_client, create_member
from tests.live import LiveServer, browser_login, follow_until

PASSWORD = "a long enough password 42"
CALLBACK = "https://rp.example/callback"
MEMBER_SCOPE = "openid profile email offline_access hours:read"


@pytest.fixture
def live(make_app, unused_port):
    app = make_app(GATEWAY_BASE_URL=f"http://127.0.0.1:{unused_port}")
    with LiveServer(app, unused_port) as server:
        yield server


def _relying_party(live, client_id: str, secret: str) -> Client:
    """The library's client, configured from discovery as a relying party does it."""
    rp = Client(client_authn_method=CLIENT_AUTHN_METHOD)
    info = rp.provider_config(live.url)  # discovery, and the provider's keys into the key jar
    assert info["issuer"] == live.url
    rp.store_registration_info(
        RegistrationResponse(client_id=client_id, client_secret=secret, redirect_uris=[CALLBACK])
    )
    return rp


def test_code_flow_with_pkce_refresh_and_userinfo(live):
    with live.app.app_context():
        member = create_member(password=PASSWORD)
        site, secret = create_client(
            scope=MEMBER_SCOPE, kind="first_party", redirect_uris=[CALLBACK]
        )
    rp = _relying_party(live, site.client_id, secret)
    assert "S256" in rp.provider_info["code_challenge_methods_supported"]
    published = requests.get(rp.provider_info["jwks_uri"], timeout=5).json()["keys"]
    held = {key.kid for key in rp.keyjar.get_verify_key(owner=live.url)}
    assert {key["kid"] for key in published} <= held  # what the ID token is checked with

    state, nonce = rndstr(24), rndstr(24)
    pkce, verifier = rp.add_code_challenge()  # S256 by default
    request = rp.construct_AuthorizationRequest(
        request_args={
            "response_type": "code",
            "scope": MEMBER_SCOPE.split(),
            "redirect_uri": CALLBACK,
            "state": state,
            "nonce": nonce,
            **pkce,
        }
    )
    assert request["code_challenge_method"] == "S256"
    browser = requests.Session()
    browser_login(browser, live.url, member.email, PASSWORD)
    callback = follow_until(browser, request.request(rp.authorization_endpoint), CALLBACK)

    answer = rp.parse_response(AuthorizationResponse, info=callback, sformat="urlencoded")
    assert answer["state"] == state
    assert answer["iss"] == live.url  # RFC 9207

    tokens = rp.do_access_token_request(
        state=state,
        request_args={"code": answer["code"], "redirect_uri": CALLBACK, "code_verifier": verifier},
        authn_method="client_secret_basic",
    )
    assert isinstance(tokens, AccessTokenResponse), tokens.to_dict()
    # The library verified the ID token (signature by kid from the JWKS, iss, aud, exp).
    id_token = tokens["id_token"]
    assert isinstance(id_token, IdToken)
    assert id_token["iss"] == live.url
    assert id_token["aud"] == [site.client_id]
    assert id_token["sub"] == member.id
    assert id_token["nonce"] == nonce
    assert tokens["refresh_token"]

    # GET with the token in the Authorization header (OIDC Core 5.3.1's recommendation; the
    # library's default POST puts it in the body, which the gateway does not read).
    info = rp.do_user_info_request(method="GET", state=state)
    assert isinstance(info, OpenIDSchema), info.to_dict()
    assert info["sub"] == member.id
    assert info["email"] == member.email

    refreshed = rp.do_access_token_refresh(state=state, authn_method="client_secret_post")
    assert isinstance(refreshed, AccessTokenResponse), refreshed.to_dict()
    assert refreshed["access_token"] != tokens["access_token"]
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    again = rp.do_user_info_request(method="GET", state=state, token=refreshed["access_token"])
    assert again["sub"] == member.id


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_client_credentials_with_each_secret_method(live, method):
    with live.app.app_context():
        site, secret = create_client(
            scope="hours:read transactions:write", kind="first_party", redirect_uris=[CALLBACK]
        )
    rp = _relying_party(live, site.client_id, secret)
    assert method in rp.provider_info["token_endpoint_auth_methods_supported"]
    tokens = rp.do_any(
        CCAccessTokenRequest,
        endpoint=rp.token_endpoint,
        request_args={"grant_type": "client_credentials", "scope": "transactions:write"},
        response=AccessTokenResponse,
        authn_method=method,
    )
    assert isinstance(tokens, AccessTokenResponse), tokens.to_dict()
    assert tokens["scope"] == ["transactions:write"]
    assert "refresh_token" not in tokens
    # The token is good at the API: the website's back end reads what it may.
    response = requests.get(
        f"{live.url}/api/v1/transactions/nope",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=5,
    )
    assert response.status_code == 404


def test_client_credentials_of_a_third_party_are_refused(live):
    with live.app.app_context():
        rp_row, secret = create_client(scope="openid transactions:write", kind="third_party")
    rp = _relying_party(live, rp_row.client_id, secret)
    answer = rp.do_any(
        CCAccessTokenRequest,
        endpoint=rp.token_endpoint,
        request_args={"grant_type": "client_credentials"},
        response=AccessTokenResponse,
        authn_method="client_secret_post",
    )
    assert answer.to_dict()["error"] == "unauthorized_client"

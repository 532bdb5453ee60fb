"""Client authentication: every method discovery advertises works at every endpoint that
advertises it, for every grant; and what is not advertised, or not registered, is refused.

private_key_jwt assertions are signed here with PyJWT and a key the test makes, so that the
provider's side (Authlib, joserfc) is checked against another implementation.
"""

from __future__ import annotations

import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from gateway.auth.housekeeping import prune_sign_on
from gateway.auth.models import ClientAssertion
from gateway.db import db
from tests.auth.oidc_helpers import REDIRECT, authorize_params, log_in, pkce_pair, query
from tests.factories import create_client, create_member

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SCOPE = "openid offline_access hours:read transactions:write"


class Credential:
    """A registered client and how it proves who it is, by one method."""

    def __init__(self, client_id: str, method: str, secret: str | None = None, key=None) -> None:
        self.client_id, self.method, self.secret, self.key = client_id, method, secret, key

    def assertion(self, audience: str, **claims) -> str:
        now = int(time.time())
        payload = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "iat": now,
            "exp": now + 120,
            "jti": str(uuid.uuid4()),
            **claims,
        }
        return jwt.encode(payload, self.key, algorithm="RS256", headers={"kid": "test-key"})

    def apply(self, data: dict, audience: str) -> dict:
        """Request arguments for the test client: form data and, for Basic, ``auth``."""
        if self.method == "client_secret_basic":
            return {"data": data, "auth": (self.client_id, self.secret)}
        if self.method == "client_secret_post":
            return {"data": {**data, "client_id": self.client_id, "client_secret": self.secret}}
        if self.method == "private_key_jwt":
            signed = self.assertion(audience)
            extra = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": signed}
            return {"data": {**data, **extra}}
        return {"data": {**data, "client_id": self.client_id}}


def _key_pair() -> tuple[rsa.RSAPrivateKey, dict]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    return private, {"keys": [{**public_jwk, "kid": "test-key", "use": "sig", "alg": "RS256"}]}


def _register(app, method: str, kind: str = "first_party") -> Credential:
    with app.app_context():
        if method == "private_key_jwt":
            private, jwks = _key_pair()
            client, _ = create_client(scope=SCOPE, kind=kind, secret_hash=None, jwks=jwks)
            return Credential(client.client_id, method, key=private)
        if method == "none":
            client, _ = create_client(
                scope=SCOPE,
                kind=kind,
                secret_hash=None,
                is_public=True,
                grant_types=["authorization_code", "refresh_token"],
            )
            return Credential(client.client_id, method)
        client, secret = create_client(scope=SCOPE, kind=kind)
        return Credential(client.client_id, method, secret=secret)


def _token_url(app) -> str:
    return app.config["GATEWAY_BASE_URL"] + "/oauth/token"


def _code_tokens(app, client, credential: Credential) -> dict:
    with app.app_context():
        member = create_member()
    log_in(client, member)
    verifier, challenge = pkce_pair()
    location = client.get(
        "/oauth/authorize",
        query_string=authorize_params(credential.client_id, challenge, scope=SCOPE),
    ).headers["Location"]
    data = {
        "grant_type": "authorization_code",
        "code": query(location)["code"],
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    response = client.post("/oauth/token", **credential.apply(data, _token_url(app)))
    assert response.status_code == 200, response.json
    return response.json


@pytest.fixture
def discovery(client) -> dict:
    return client.get("/.well-known/openid-configuration").json


def test_discovery_advertises_what_the_endpoints_accept(discovery):
    assert discovery["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    ]
    assert (
        discovery["revocation_endpoint_auth_methods_supported"]
        == (discovery["token_endpoint_auth_methods_supported"])
    )
    assert "none" not in discovery["introspection_endpoint_auth_methods_supported"]
    # OIDC Discovery: required when private_key_jwt is advertised.
    assert "RS256" in discovery["token_endpoint_auth_signing_alg_values_supported"]


@pytest.mark.parametrize(
    "method", ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
)
def test_code_and_refresh_grants_with_each_method(app, client, discovery, method):
    assert method in discovery["token_endpoint_auth_methods_supported"]
    credential = _register(app, method)
    tokens = _code_tokens(app, client, credential)
    data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    refreshed = client.post("/oauth/token", **credential.apply(data, _token_url(app)))
    assert refreshed.status_code == 200, refreshed.json
    assert refreshed.json["access_token"] != tokens["access_token"]


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post", "private_key_jwt"])
def test_client_credentials_with_each_method(app, client, discovery, method):
    assert method in discovery["token_endpoint_auth_methods_supported"]
    credential = _register(app, method)
    data = {"grant_type": "client_credentials", "scope": "transactions:write"}
    response = client.post("/oauth/token", **credential.apply(data, _token_url(app)))
    assert response.status_code == 200, response.json
    assert response.json["scope"] == "transactions:write"


@pytest.mark.parametrize(
    "method", ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
)
def test_revocation_with_each_method(app, client, discovery, method):
    assert method in discovery["revocation_endpoint_auth_methods_supported"]
    credential = _register(app, method)
    tokens = _code_tokens(app, client, credential)
    url = discovery["revocation_endpoint"]
    data = {"token": tokens["refresh_token"], "token_type_hint": "refresh_token"}
    assert client.post("/oauth/revoke", **credential.apply(data, url)).status_code == 200
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/oauth/userinfo", headers=bearer).status_code == 401


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post", "private_key_jwt"])
def test_introspection_with_each_method(app, client, discovery, method):
    assert method in discovery["introspection_endpoint_auth_methods_supported"]
    credential = _register(app, method)
    tokens = _code_tokens(app, client, credential)
    url = discovery["introspection_endpoint"]
    data = {"token": tokens["access_token"]}
    answer = client.post("/oauth/introspect", **credential.apply(data, url))
    assert answer.status_code == 200
    assert answer.json["active"] is True


def test_public_client_cannot_introspect(app, client):
    credential = _register(app, "none")
    tokens = _code_tokens(app, client, credential)
    answer = client.post(
        "/oauth/introspect", **credential.apply({"token": tokens["access_token"]}, "")
    )
    assert answer.status_code in (400, 401)
    assert answer.json["error"] == "invalid_client"


def test_each_client_uses_only_its_registered_method(app, client):
    with_secret = _register(app, "client_secret_basic")
    with_key = _register(app, "private_key_jwt")
    data = {"grant_type": "client_credentials"}
    # A key client has no secret to send; a secret client no key registered.
    as_secret = Credential(with_key.client_id, "client_secret_post", secret="anything")
    as_key = Credential(with_secret.client_id, "private_key_jwt", key=with_key.key)
    for credential in (as_secret, as_key):
        response = client.post("/oauth/token", **credential.apply(data, _token_url(app)))
        assert response.status_code in (400, 401), credential.method
        assert response.json["error"] == "invalid_client"


def _assertion_response(app, client, credential: Credential, signed: str):
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": signed,
    }
    return client.post("/oauth/token", data=data)


def test_an_assertion_is_used_once(app, client):
    credential = _register(app, "private_key_jwt")
    signed = credential.assertion(_token_url(app))
    assert _assertion_response(app, client, credential, signed).status_code == 200
    replay = _assertion_response(app, client, credential, signed)
    assert replay.status_code in (400, 401)
    assert replay.json["error"] == "invalid_client"
    with app.app_context():
        assert db.session.query(ClientAssertion).count() == 1
        # Kept until the assertion expired; then housekeeping lets it go.
        assert prune_sign_on()["assertions"] == 0
        assert prune_sign_on(now=time.time() + 3600)["assertions"] == 1


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "https://another-server.example/oauth/token"},
        {"exp": int(time.time()) - 300},
        {"exp": int(time.time()) + 3600},  # far beyond what the provider remembers jtis for
        {"iss": "someone-else"},
    ],
    ids=["audience", "expired", "too-long", "issuer"],
)
def test_bad_assertions_are_refused(app, client, claims):
    credential = _register(app, "private_key_jwt")
    signed = credential.assertion(_token_url(app), **claims)
    response = _assertion_response(app, client, credential, signed)
    assert response.status_code in (400, 401)
    assert response.json["error"] == "invalid_client"
    assert "access_token" not in response.json


def test_an_assertion_signed_by_another_key_is_refused(app, client):
    credential = _register(app, "private_key_jwt")
    forger = Credential(credential.client_id, "private_key_jwt", key=_key_pair()[0])
    response = _assertion_response(app, client, credential, forger.assertion(_token_url(app)))
    assert response.json["error"] == "invalid_client"


def test_unsigned_and_symmetric_assertions_are_refused(app, client):
    credential = _register(app, "private_key_jwt")
    now = int(time.time())
    claims = {
        "iss": credential.client_id,
        "sub": credential.client_id,
        "aud": _token_url(app),
        "exp": now + 60,
        "jti": str(uuid.uuid4()),
    }
    unsigned = jwt.encode(claims, None, algorithm="none")
    # HS256 keyed with the public key's modulus: the classic algorithm-confusion forgery.
    with app.app_context():
        from gateway.auth.models import OAuthClient

        jwks = db.session.query(OAuthClient).one().jwks
    symmetric = jwt.encode(claims, jwks["keys"][0]["n"].encode() * 2, algorithm="HS256")
    for signed in (unsigned, symmetric):
        response = _assertion_response(app, client, credential, signed)
        assert response.json["error"] == "invalid_client"


def test_a_key_client_registered_from_a_jwks_file_authenticates(app, app_config, client, tmp_path):
    from click.testing import CliRunner

    from gateway.cli import main

    private, jwks = _key_pair()
    public_file, private_file = tmp_path / "public.json", tmp_path / "private.json"
    public_file.write_text(json.dumps(jwks))
    private_jwk = json.loads(RSAAlgorithm.to_jwk(private))
    private_file.write_text(json.dumps({"keys": [private_jwk]}))
    env = {k: app_config[k] for k in ("DATABASE_URL", "GATEWAY_DATA_DIR", "SECRET_KEY")}
    command = ["clients", "create", "--name", "Ops", "--kind", "machine", "--scope", "admin"]
    leaked = CliRunner().invoke(main, [*command, "--jwks-file", str(private_file)], env=env)
    assert leaked.exit_code == 2
    assert "private key" in leaked.output
    created = CliRunner().invoke(
        main, [*command, "--jwks-file", str(public_file), "--json"], env=env
    )
    assert created.exit_code == 0, created.output
    data = json.loads(created.output)
    assert data["client_secret"] is None
    assert data["token_endpoint_auth_method"] == "private_key_jwt"
    credential = Credential(data["client_id"], "private_key_jwt", key=private)
    response = client.post(
        "/oauth/token", **credential.apply({"grant_type": "client_credentials"}, _token_url(app))
    )
    assert response.status_code == 200, response.json
    assert response.json["scope"] == "admin"

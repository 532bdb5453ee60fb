"""JWTs minted for platforms verify against the gateway's own JWKS."""

from __future__ import annotations

from joserfc import jwt
from joserfc.jwk import KeySet

from connectors.interface import PlatformConfig
from gateway.auth.minting import komunitin_token


def test_komunitin_token_verifies_with_the_published_keys(app, client):
    config = PlatformConfig(name="kom", base_url="https://accounting.komunitin.test")
    with app.app_context():
        token = komunitin_token(config)
        assert komunitin_token(config) == token  # reused while fresh
    keyset = KeySet.import_key_set(client.get("/oauth/jwks").json)
    claims = jwt.decode(token, keyset, algorithms=["RS256"]).claims
    assert claims["scope"] == "komunitin_accounting"
    assert claims["aud"] == "https://accounting.komunitin.test"
    assert claims["iss"] == app.config["GATEWAY_BASE_URL"]
    assert claims["exp"] - claims["iat"] == 300

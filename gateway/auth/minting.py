"""JWTs the gateway mints from its own issuer for platforms that accept them (Komunitin's
accounting API wants a bearer JWT with scope ``komunitin_accounting``).

Configure a platform with ``--option token_provider=gateway.auth.minting:komunitin_token``;
the platform verifies the token against the gateway's JWKS.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from flask import current_app
from joserfc import jwt

from connectors.interface import PlatformConfig
from gateway.auth import keys

LIFETIME_SECONDS = 300
# Minted tokens are reused until shortly before they expire: one signature per few minutes.
_cache: dict[tuple[str, str, str], tuple[str, float]] = {}


def mint(
    audience: str, scope: str, subject: str = "gateway", lifetime: int = LIFETIME_SECONDS
) -> str:
    """A short-lived JWT for ``audience``, signed with the current signing key."""
    now = int(time.time())
    key = keys.signing_key()
    claims: dict[str, Any] = {
        "iss": current_app.config["GATEWAY_BASE_URL"],
        "sub": subject,
        "aud": audience,
        "scope": scope,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode({"alg": keys.ALGORITHM, "kid": key.kid, "typ": "JWT"}, claims, key)


def komunitin_token(config: PlatformConfig) -> str:
    """The bearer token for a Komunitin platform (``token_provider`` option)."""
    # Keyed on the signing key too: a rotation (or another database) never reuses a token.
    cache_key = (current_app.config["GATEWAY_BASE_URL"], config.base_url, keys.signing_key().kid)
    cached = _cache.get(cache_key)
    if cached and cached[1] - time.time() > 60:
        return cached[0]
    token = mint(config.base_url, "komunitin_accounting")
    _cache[cache_key] = (token, time.time() + LIFETIME_SECONDS)
    return token

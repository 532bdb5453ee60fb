"""JWTs the gateway mints from its own issuer for platforms that accept them (Komunitin's
accounting API wants a bearer JWT with scope ``komunitin_accounting``).

A platform asks for them with ``--option token_source=gateway``. Building its connector, the
gateway hands in a ``MintedTokenSource`` (``PlatformConfig.token_source``); connectors call it
from the drain's and the reconciliation's pool threads, which have no application context. The
platform verifies the tokens against the gateway's JWKS.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from flask import Flask, current_app, has_app_context
from joserfc import jwt

from connectors.errors import PermanentError
from gateway.auth import keys

__all__ = ["MINTED", "TOKEN_SOURCE_OPTION", "MintedTokenSource", "mint", "token_source_for"]

LIFETIME_SECONDS = 300
# A token is renewed this long before it expires, so none expires between check and use.
RENEW_BEFORE_SECONDS = 60
# The platform option naming the kind of token source the gateway builds, and its one kind.
TOKEN_SOURCE_OPTION = "token_source"  # noqa: S105 - an option's name, not a secret
MINTED = "gateway"


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


class MintedTokenSource:
    """JWTs for one platform (``audience``), minted in ``app``, from any thread.

    A token is reused until shortly before it expires: one signature per few minutes, not per
    request. ``invalidate`` (the platform refused the token) makes the next call mint another.
    """

    def __init__(
        self,
        app: Flask,
        audience: str,
        scope: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._app = app
        self._audience = audience
        self._scope = scope
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self.minted = 0  # how many tokens were signed: lets tests see the cache

    def token(self) -> str:
        """The current token, or a new one when it is about to expire."""
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._token = self._mint()
                self._renew_at = self._clock() + LIFETIME_SECONDS - RENEW_BEFORE_SECONDS
                self.minted += 1
            return self._token

    def invalidate(self) -> None:
        """Drop the current token (the platform refused it)."""
        with self._lock:
            self._token = None

    def _mint(self) -> str:
        # A job's own thread already runs in this app's context: mint there. A pool thread has
        # none and gets its own; pushing one inside a caller's would end the caller's database
        # session when it is torn down.
        if has_app_context() and cast(Any, current_app)._get_current_object() is self._app:
            return mint(self._audience, self._scope)
        with self._app.app_context():
            return mint(self._audience, self._scope)


def token_source_for(
    options: Mapping[str, Any], audience: str, scopes: Sequence[str]
) -> MintedTokenSource | None:
    """The token source a platform's options ask of the gateway; None if they ask for none.

    Called in the application context that builds the connector, whose app the source keeps.
    """
    kind = options.get(TOKEN_SOURCE_OPTION)
    if kind is None:
        return None
    if kind != MINTED:
        raise PermanentError(
            f"{TOKEN_SOURCE_OPTION}={kind!r} is unknown: the gateway builds only {MINTED!r}",
            "misconfigured",
        )
    return MintedTokenSource(
        cast(Any, current_app)._get_current_object(), audience, " ".join(scopes)
    )

"""Bearer tokens for connectors: OAuth 2 client credentials with a cache.

A ``ClientCredentialsTokenSource`` keeps its token until shortly before it expires, so a worker
asks the token endpoint once per token lifetime, not once per request; ``invalidate`` (after a
401) makes the next call fetch a new one. Tokens are never logged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from connectors.errors import AuthError, PermanentError
from connectors.http import HttpClient

__all__ = ["ClientCredentialsTokenSource"]

# Renew this long before expiry, so that a token never expires between check and use.
EXPIRY_LEEWAY_SECONDS = 30.0
# Used when a token endpoint omits expires_in (RFC 6749 allows it).
DEFAULT_EXPIRES_IN = 300.0


class ClientCredentialsTokenSource:
    """Tokens from an OAuth 2 token endpoint (client_credentials, client_secret_basic)."""

    def __init__(
        self,
        http: HttpClient,
        token_url: str,
        client_id: str,
        client_secret: str,
        scopes: Sequence[str] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not client_id or not client_secret:
            raise PermanentError("client_id and client_secret are required", "misconfigured")
        self._http = http
        self._token_url = token_url
        self._client = (client_id, client_secret)
        self._scope = " ".join(scopes)
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self.fetches = 0  # how many tokens were obtained: lets tests and metrics see the cache

    def token(self) -> str:
        """The cached token, or a new one when it is about to expire."""
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._token = self._fetch()
            return self._token

    def invalidate(self) -> None:
        """Drop the cached token (the platform refused it)."""
        with self._lock:
            self._token = None

    def _fetch(self) -> str:
        form = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = self._scope
        try:
            reply = self._http.request(
                "POST",
                self._token_url,
                form=form,
                auth=self._client,
                authenticated=False,
            )
        except AuthError:
            raise
        except PermanentError as exc:
            # invalid_client, invalid_scope, unauthorized_client: credentials, not data, are wrong.
            raise AuthError(f"token endpoint refused: {exc}", exc.code, status=exc.status) from exc
        body = reply.body if isinstance(reply.body, dict) else {}
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise AuthError("token endpoint answered without an access_token", "bad_token")
        if str(body.get("token_type", "Bearer")).lower() != "bearer":
            raise AuthError("token endpoint gave a token that is not a bearer token", "bad_token")
        expires_in = body.get("expires_in", DEFAULT_EXPIRES_IN)
        try:
            lifetime = float(expires_in)
        except (TypeError, ValueError):
            lifetime = DEFAULT_EXPIRES_IN
        # Short-lived tokens renew at half their life rather than immediately.
        leeway = min(EXPIRY_LEEWAY_SECONDS, lifetime / 2)
        self._renew_at = self._clock() + lifetime - leeway
        self.fetches += 1
        return token

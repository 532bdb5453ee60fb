"""Bearer tokens for connectors: OAuth 2 client credentials with a cache.

A ``ClientCredentialsTokenSource`` keeps its token until shortly before it expires, so a worker
asks the token endpoint once per token lifetime, not once per request; ``invalidate`` (after a
401) makes the next call fetch a new one. Tokens are never logged.

A process's cache dies with the process, and an RQ work horse is a fresh fork per job: given a
``TokenStore`` (the gateway hands one in as ``PlatformConfig.token_store``), the source also
shares its token with the other processes that hold the same client's credentials.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from connectors.errors import AuthError, PermanentError
from connectors.http import HttpClient

__all__ = ["ClientCredentialsTokenSource", "StoredToken", "TokenKey", "TokenStore"]

# Renew this long before expiry, so that a token never expires between check and use.
EXPIRY_LEEWAY_SECONDS = 30.0
# Used when a token endpoint omits expires_in (RFC 6749 allows it).
DEFAULT_EXPIRES_IN = 300.0


@dataclass(frozen=True)
class TokenKey:
    """What a token was issued for: an endpoint, a client and its scopes; never the secret."""

    token_url: str
    client_id: str
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class StoredToken:
    """A token read from a ``TokenStore`` and the seconds it has left to live."""

    access_token: str = field(repr=False)
    expires_in: float


class TokenStore(Protocol):
    """Tokens shared between processes, for one platform.

    A store decides how long it keeps a token (less than ``expires_in``) and may refuse to keep
    one at all. It never raises: a store that cannot answer behaves as an empty one, so that a
    cache failure costs a token request, never a delivery.
    """

    def get(self, key: TokenKey) -> StoredToken | None:
        """The token kept for ``key`` with its remaining life, or None."""
        ...

    def put(self, key: TokenKey, access_token: str, expires_in: float) -> None:
        """Keep ``access_token``, which the token endpoint says lives ``expires_in`` seconds."""
        ...

    def discard(self, key: TokenKey) -> None:
        """Forget the token kept for ``key`` (the platform refused it)."""
        ...


class ClientCredentialsTokenSource:
    """Tokens from an OAuth 2 token endpoint (client_credentials, client_secret_basic).

    With a ``store``, a token missing from this process's cache is looked up there before the
    endpoint is asked, and a fetched token is put there (unless the endpoint gave no
    ``expires_in``: a guessed lifetime is not shared). Two processes that miss at once both
    fetch, and the later ``put`` wins: a token more, which is cheaper than a lock held across
    an HTTP call. After a 401, ``invalidate`` drops the token here and in the store, and the
    refused token is never taken from the store again.
    """

    def __init__(
        self,
        http: HttpClient,
        token_url: str,
        client_id: str,
        client_secret: str,
        scopes: Sequence[str] = (),
        *,
        store: TokenStore | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not client_id or not client_secret:
            raise PermanentError("client_id and client_secret are required", "misconfigured")
        self._http = http
        self._token_url = token_url
        self._client = (client_id, client_secret)
        self._scope = " ".join(scopes)
        self._store = store
        # Scope order means nothing to OAuth: one key for every spelling of the same set.
        self._key = TokenKey(token_url, client_id, tuple(sorted(set(scopes))))
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refused: str | None = None
        self._renew_at = 0.0
        self.fetches = 0  # how many tokens were obtained: lets tests and metrics see the cache
        self.store_hits = 0  # how many came from the store instead

    def token(self) -> str:
        """The cached token, or a new one when it is about to expire."""
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._token = self._from_store() or self._fetch()
            return self._token

    def invalidate(self) -> None:
        """Drop the cached token (the platform refused it), here and in the store."""
        with self._lock:
            self._refused, self._token = self._token, None
            if self._store is not None:
                self._store.discard(self._key)

    def _from_store(self) -> str | None:
        if self._store is None:
            return None
        stored = self._store.get(self._key)
        if stored is None or stored.access_token == self._refused:
            return None
        self._renew(stored.expires_in)
        self.store_hits += 1
        return stored.access_token

    def _renew(self, lifetime: float) -> None:
        # Short-lived tokens renew at half their life rather than immediately.
        leeway = min(EXPIRY_LEEWAY_SECONDS, lifetime / 2)
        self._renew_at = self._clock() + lifetime - leeway

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
        given = _lifetime(body.get("expires_in"))
        self._renew(DEFAULT_EXPIRES_IN if given is None else given)
        self.fetches += 1
        if self._store is not None and given is not None:
            self._store.put(self._key, token, given)
        return token


def _lifetime(expires_in: object) -> float | None:
    """``expires_in`` in seconds, or None when absent or no finite number."""
    if expires_in is None or isinstance(expires_in, bool):
        return None
    try:
        lifetime = float(expires_in)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return lifetime if math.isfinite(lifetime) else None

"""Partner OAuth tokens shared between worker processes: encrypted, in Redis, until expiry.

Every RQ work horse is a fresh fork, so a token cached in a process dies with its job: without
this store each sync job asked the partner's token endpoint for a new token. Building a
platform's connector, the gateway hands it a ``RedisTokenStore`` (``PlatformConfig.token_store``)
and the connector's ``ClientCredentialsTokenSource`` looks there before it asks the partner.

Redis only ever holds the token encrypted with the gateway's keys (``gateway.crypto``), bound to
the key it is stored under, so that a value copied to another platform's key is refused rather
than sent to that platform. A key is a hash of the platform id, token endpoint, client id and
scopes; the client secret takes no part. Redis forgets a token a minute (or a tenth of its life,
if less) before the partner does. When Redis cannot answer, the store behaves as an empty one:
the connector fetches its own token and the delivery goes on; the first failure is logged at
warning, the rest of the outage quietly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable

import redis
from cryptography.fernet import InvalidToken, MultiFernet
from flask import current_app
from redis.exceptions import RedisError

from connectors.tokens import StoredToken, TokenKey
from gateway.crypto import cipher
from gateway.redis_client import get_redis

__all__ = ["RedisTokenStore", "shared_lifetime", "token_store_for"]

log = logging.getLogger(__name__)

PREFIX = "gateway:partner-token:"
# Redis drops a token this long before the partner would refuse it: at most a minute, and at
# most a tenth of its life, so that short-lived tokens are still worth sharing.
MAX_MARGIN_SECONDS = 60.0
MARGIN_RATIO = 0.1
# A token that would be shared for less than this is not worth the round trips.
MIN_SHARED_SECONDS = 10.0
# After a failure, Redis is left alone this long: a Redis that times out would otherwise cost
# every token request of the job its connect timeout.
PAUSE_AFTER_FAILURE_SECONDS = 30.0


def shared_lifetime(expires_in: float) -> float | None:
    """How long Redis keeps a token that lives ``expires_in`` seconds; None: not at all."""
    ttl = expires_in - min(MAX_MARGIN_SECONDS, expires_in * MARGIN_RATIO)
    return ttl if ttl >= MIN_SHARED_SECONDS else None


class RedisTokenStore:
    """The ``connectors.tokens.TokenStore`` of one platform, in Redis.

    Safe to share between threads; needs no application context once built.
    """

    def __init__(
        self,
        connection: redis.Redis,
        keys: MultiFernet,
        platform_id: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._connection = connection
        self._keys = keys
        self._platform_id = platform_id
        self._clock = clock
        self._lock = threading.Lock()
        self._paused_until = 0.0
        self._failing = False

    def redis_key(self, key: TokenKey) -> str:
        """Where the token for ``key`` is kept: no part of it readable, no secret in it."""
        parts = [self._platform_id, key.token_url, key.client_id, list(key.scopes)]
        digest = hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode()).hexdigest()
        return PREFIX + digest

    def get(self, key: TokenKey) -> StoredToken | None:
        """The token kept for ``key`` and its remaining life; None if none or unreadable."""
        name = self.redis_key(key)
        raw = self._call(lambda: self._connection.get(name))
        if not isinstance(raw, bytes):
            return None
        try:
            payload = json.loads(self._keys.decrypt(raw))
            bound, token, expires_at = payload["key"], payload["token"], payload["expires_at"]
            remaining = float(expires_at) - self._clock()
        except (InvalidToken, ValueError, KeyError, TypeError):
            # Encrypted with a key since retired, or not ours: fetch, and the put replaces it.
            log.info("a shared partner token could not be read; fetching a new one")
            return None
        if bound != name or not isinstance(token, str) or remaining <= 0:
            return None
        return StoredToken(token, remaining)

    def put(self, key: TokenKey, access_token: str, expires_in: float) -> None:
        """Keep ``access_token`` until shortly before it expires (not at all if it is short)."""
        ttl = shared_lifetime(expires_in)
        if ttl is None:
            return
        name = self.redis_key(key)
        payload = {"key": name, "token": access_token, "expires_at": self._clock() + expires_in}
        value = self._keys.encrypt(json.dumps(payload).encode())
        self._call(lambda: self._connection.set(name, value, px=int(ttl * 1000)))

    def discard(self, key: TokenKey) -> None:
        """Forget the token kept for ``key``."""
        name = self.redis_key(key)
        self._call(lambda: self._connection.delete(name))

    def _call(self, command: Callable[[], object]) -> object:
        with self._lock:
            if time.monotonic() < self._paused_until:
                return None
        try:
            result = command()
        except RedisError as exc:
            with self._lock:
                self._paused_until = time.monotonic() + PAUSE_AFTER_FAILURE_SECONDS
                first, self._failing = not self._failing, True
            if first:
                log.warning(
                    "partner tokens are not shared while Redis is unavailable (%s); "
                    "each process fetches its own",
                    type(exc).__name__,
                )
            return None
        with self._lock:
            if self._failing:
                self._failing = False
                log.info("partner tokens are shared again: Redis answers")
        return result


def token_store_for(platform_id: str | None) -> RedisTokenStore | None:
    """The store of a platform's tokens, on the app's Redis and keys; None for an unsaved one.

    Called in the application context that builds the connector; the store keeps what it needs.
    """
    if not platform_id:
        return None
    return RedisTokenStore(get_redis(), cipher(current_app.config), platform_id)

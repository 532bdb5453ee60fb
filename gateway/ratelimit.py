"""Fixed-window rate limits in Redis, shared by every web process.

A limit that Redis cannot check lets the request through (and says so in the log): refusing
every login while Redis restarts would lock out everyone to stop no one.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from flask import current_app
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RateLimit:
    """The outcome of one hit."""

    allowed: bool
    retry_after: int = 0


def _key(name: str, subject: str) -> str:
    # Subjects are emails and addresses: keep them out of Redis in clear.
    digest = hashlib.sha256(subject.encode()).hexdigest()[:32]
    return f"gateway:ratelimit:{name}:{digest}"


def hit(name: str, subject: str, limit: int, window_seconds: int) -> RateLimit:
    """Count one attempt by ``subject`` against the ``name`` limit."""
    key = _key(name, subject)
    try:
        pipe = current_app.extensions["redis"].pipeline()
        # SET NX EX starts the window once (EXPIRE NX needs Redis 7; the embedded one is 6.2).
        pipe.set(key, 0, ex=window_seconds, nx=True)
        pipe.incr(key)
        pipe.ttl(key)
        _, count, ttl = pipe.execute()
    except RedisError:
        log.warning("rate limit %s not checked: Redis is unavailable", name)
        return RateLimit(True)
    if count > limit:
        return RateLimit(False, max(int(ttl), 1))
    return RateLimit(True)


def reset(name: str, subject: str) -> None:
    """Forget ``subject``'s attempts (after a successful login)."""
    try:
        current_app.extensions["redis"].delete(_key(name, subject))
    except RedisError:
        log.warning("rate limit %s not reset: Redis is unavailable", name)

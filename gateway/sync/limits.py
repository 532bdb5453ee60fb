"""A per-platform concurrency limit across every worker process (a Redis semaphore with leases).

Each holder is a member of a sorted set scored by its lease expiry, so a worker killed while
holding a slot frees it when the lease runs out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

PREFIX = "gateway:slots:"

_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  return 1
end
return 0
"""


@contextmanager
def platform_slot(
    connection: redis.Redis, platform_id: str, holder: str, limit: int, lease_seconds: int = 180
) -> Iterator[bool]:
    """Yield True holding one of ``limit`` slots of the platform, or False when all are taken."""
    key = PREFIX + platform_id
    now = time.time()
    acquired = bool(
        connection.eval(_ACQUIRE, 1, key, now, limit, now + lease_seconds, holder, lease_seconds)
    )
    try:
        yield acquired
    finally:
        if acquired:
            connection.zrem(key, holder)

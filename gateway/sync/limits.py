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


_ACQUIRE_MANY = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local taken = math.min(tonumber(ARGV[2]) - redis.call('ZCARD', KEYS[1]), tonumber(ARGV[3]))
for i = 1, taken do
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[5] .. ':' .. i)
end
if taken > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[6])
  return taken
end
return 0
"""


@contextmanager
def platform_slots(
    connection: redis.Redis,
    platform_id: str,
    holder: str,
    wanted: int,
    limit: int,
    lease_seconds: int = 180,
) -> Iterator[int]:
    """Yield how many of the ``wanted`` slots (0 to ``wanted``) were free and are now held.

    One round trip takes them all, so a drain that works several calls at a time pays for its
    slots once, not once per call; they are freed together when the block ends.
    """
    key = PREFIX + platform_id
    now = time.time()
    taken = int(
        connection.eval(
            _ACQUIRE_MANY, 1, key, now, limit, wanted, now + lease_seconds, holder, lease_seconds
        )
    )
    try:
        yield taken
    finally:
        if taken:
            connection.zrem(key, *(f"{holder}:{i}" for i in range(1, taken + 1)))

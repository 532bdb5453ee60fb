"""A per-platform concurrency limit across every worker process (a Redis semaphore with leases).

Each holder is a member of a sorted set scored by its lease expiry, so a worker killed while
holding a slot frees it when the lease runs out. A drain holds its slots for as long as it runs
and renews their lease as it goes, so that lease can be short: a drain killed with SIGKILL
gives its platform's slots back within ``SLOT_LEASE_SECONDS``, not the rows' longer lease.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

PREFIX = "gateway:slots:"
SLOT_LEASE_SECONDS = 30
# The set's own expiry only collects an idle platform's key: holders expire by their scores. It
# is never set below what any holder's lease needs.
KEY_TTL_SECONDS = 3600

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


class HeldSlots:
    """The slots one drain holds; ``keep_alive`` renews their lease while the drain lives."""

    def __init__(self, connection: redis.Redis, key: str, members: list[str], lease: float) -> None:
        self.connection = connection
        self.key = key
        self.members = members
        self.lease = lease
        # Renewed when a third of the lease is gone: two renewals may fail before it runs out.
        self.renew_every = lease / 3
        self._renew_at = time.monotonic() + self.renew_every

    @property
    def count(self) -> int:
        """How many slots are held."""
        return len(self.members)

    def keep_alive(self) -> None:
        """Push the lease back once a third of it has passed (cheap to call often)."""
        if not self.members or time.monotonic() < self._renew_at:
            return
        expiry = time.time() + self.lease
        pipe = self.connection.pipeline(transaction=False)
        # XX: a slot that expired meanwhile (the drain stalled past its lease) is not taken back.
        pipe.zadd(self.key, dict.fromkeys(self.members, expiry), xx=True)
        pipe.expire(self.key, KEY_TTL_SECONDS)
        pipe.execute()
        self._renew_at = time.monotonic() + self.renew_every


@contextmanager
def platform_slots(
    connection: redis.Redis,
    platform_id: str,
    holder: str,
    wanted: int,
    limit: int,
    lease_seconds: float = SLOT_LEASE_SECONDS,
) -> Iterator[HeldSlots]:
    """Hold as many of the ``wanted`` slots (0 to ``wanted``) as are free, for the block.

    One round trip takes them all, so a drain that works several calls at a time pays for its
    slots once, not once per call; they are freed together when the block ends. The holder
    calls ``keep_alive`` as it works.
    """
    key = PREFIX + platform_id
    now = time.time()
    taken = int(
        connection.eval(
            _ACQUIRE_MANY,
            1,
            key,
            now,
            limit,
            wanted,
            now + lease_seconds,
            holder,
            KEY_TTL_SECONDS,
        )
    )
    slots = HeldSlots(
        connection, key, [f"{holder}:{i}" for i in range(1, taken + 1)], lease_seconds
    )
    try:
        yield slots
    finally:
        if slots.members:
            connection.zrem(key, *slots.members)

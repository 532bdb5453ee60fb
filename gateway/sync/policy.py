"""The retry policy in one place: how long to wait, and when to give up.

Exponential backoff with full jitter (a random wait between zero and the exponential cap) keeps a
recovering platform from being hit by every worker at once; a platform's Retry-After is a floor.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from flask import current_app


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff parameters of the sync engine."""

    base_seconds: float = 2.0
    cap_seconds: float = 600.0
    max_attempts: int = 8

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``attempt``-th failed try (1-based)."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempt - 1))
        jittered = random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography
        return max(jittered, retry_after or 0.0)

    def gives_up_after(self, attempt: int) -> bool:
        """Whether ``attempt`` was the last one allowed."""
        return attempt >= self.max_attempts


def current_policy() -> RetryPolicy:
    """The policy configured on the current app."""
    config = current_app.config
    return RetryPolicy(
        base_seconds=float(config.get("SYNC_BACKOFF_BASE_SECONDS", 2.0)),
        cap_seconds=float(config.get("SYNC_BACKOFF_CAP_SECONDS", 600.0)),
        max_attempts=int(config.get("SYNC_MAX_ATTEMPTS", 8)),
    )


def policy_for(connector: str) -> RetryPolicy:
    """The policy for a platform of ``connector``: webhook receivers get their own budget.

    A website's receiver down for an hour must still get every event (``gateway.webhooks``),
    while a partner that fails for that long is better shown to an operator early.
    """
    policy = current_policy()
    if connector != "webhooks":
        return policy
    config = current_app.config
    return RetryPolicy(
        base_seconds=policy.base_seconds,
        cap_seconds=float(config.get("WEBHOOK_BACKOFF_CAP_SECONDS", 3600.0)),
        max_attempts=int(config.get("WEBHOOK_MAX_ATTEMPTS", 20)),
    )

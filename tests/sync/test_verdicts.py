"""What an attempt's error means for its row: decided by the error's class, never its status."""

from __future__ import annotations

from gateway.sync.models import OutboxItem
from gateway.sync.policy import RetryPolicy
from gateway.sync.remote import RateLimitedError, RetryableError
from gateway.sync.verdicts import failed

POLICY = RetryPolicy(base_seconds=1.0, cap_seconds=10.0, max_attempts=3)


def _item(attempts: int) -> OutboxItem:
    return OutboxItem(id="row-1", platform_id="p-1", kind="push_transfer", attempts=attempts)


def test_a_rate_limited_error_throttles_without_spending_an_attempt():
    # No status at all: a connector may learn of throttling another way than a 429.
    verdict = failed(_item(3), RateLimitedError("slow down", retry_after=4.0), POLICY)
    assert (verdict.state, verdict.outcome, verdict.counted) == ("pending", "throttled", False)
    assert verdict.retry_in >= 4.0


def test_a_retryable_error_is_an_attempt_whatever_its_status():
    verdict = failed(_item(1), RetryableError("busy", status=429), POLICY)
    assert (verdict.state, verdict.outcome, verdict.counted) == ("pending", "retry", True)
    assert failed(_item(3), RetryableError("busy", status=429), POLICY).state == "dead"

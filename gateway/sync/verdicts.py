"""What an attempt's ending means for its row, and writing many such endings at once.

Each claimed row ends its turn with one ``Verdict``: delivered, retry later (backoff with full
jitter, the platform's Retry-After as a floor), throttled (a 429: recorded, but it spends none of
the row's attempts), dead letter, or put back without counting an attempt (our side was not
ready). ``record`` writes a batch of verdicts (row states and their
``sync_attempts``) as two bulk statements in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, update

from gateway.db import db, utcnow
from gateway.sync.claims import follow_dependencies, release_dependents
from gateway.sync.models import FINAL_STATES, OutboxItem, SyncAttempt
from gateway.sync.policy import RetryPolicy
from gateway.sync.remote import ConflictError, PermanentError, RateLimitedError, RetryableError


@dataclass
class Verdict:
    """The end of one claimed row's turn.

    ``outcome`` is what ``sync_attempts`` records (ok, retry, throttled, dead, conflict); None
    means the turn was no attempt at all. ``counted`` False gives the claim's attempt back (no
    attempt, or a throttled one).
    """

    item_id: str
    platform_id: str
    state: str
    outcome: str | None = None
    error: str | None = None
    code: str | None = None
    result: dict[str, Any] | None = None
    retry_in: float | None = None
    started_at: datetime | None = None
    duration_ms: int = 0
    counted: bool = True
    # For the circuit breaker: did the platform answer (True), fail (False), or not take part?
    platform_up: bool | None = None


def postponed(item: OutboxItem, delay: float) -> Verdict:
    """Back to pending in ``delay`` seconds; not an attempt."""
    return Verdict(item.id, item.platform_id, "pending", retry_in=delay, counted=False)


def succeeded(item: OutboxItem, result: dict[str, Any], *, conflict: bool = False) -> Verdict:
    """Delivered (or found already there: a conflict that resolves to done)."""
    return Verdict(
        item.id,
        item.platform_id,
        "succeeded",
        outcome="conflict" if conflict else "ok",
        result=result,
        platform_up=True,
    )


def dead(item: OutboxItem, error: str, code: str) -> Verdict:
    """A dead letter: no more attempts."""
    return Verdict(item.id, item.platform_id, "dead", outcome="dead", error=error, code=code)


def skipped(item: OutboxItem, reason: str, code: str) -> Verdict:
    """Skipped without a call (a reversal whose transfer was skipped): no attempt."""
    return Verdict(item.id, item.platform_id, "skipped", error=reason, code=code, counted=False)


def failed(item: OutboxItem, error: Exception, policy: RetryPolicy) -> Verdict:
    """A failed attempt: retry after a backoff, or die when it was the last one allowed."""
    if isinstance(error, PermanentError) and not isinstance(error, ConflictError):
        verdict = dead(item, str(error), getattr(error, "code", None) or "permanent")
        verdict.platform_up = True  # the platform answered; it is not down
        return verdict
    retry_after = error.retry_after if isinstance(error, RetryableError) else None
    if isinstance(error, RateLimitedError):
        # The platform is up and says when to come back. Throttling is no fault of the row: it
        # must not spend the attempts a dead letter is decided on (a burst of 429s would
        # otherwise kill good rows). A platform that throttles for ever shows as sync lag.
        return Verdict(
            item.id,
            item.platform_id,
            "pending",
            outcome="throttled",
            error=str(error),
            code="throttled",
            retry_in=policy.delay(max(1, item.attempts - 1), retry_after),
            counted=False,
        )
    code = type(error).__name__ if isinstance(error, RetryableError) else "unexpected"
    # An error of ours (not a connector's) says nothing about the platform.
    platform_up = None if code == "unexpected" else False
    if policy.gives_up_after(item.attempts):
        verdict = dead(
            item, f"gave up after {item.attempts} attempts: {error}", "retries_exhausted"
        )
    else:
        verdict = Verdict(
            item.id,
            item.platform_id,
            "pending",
            outcome="retry",
            error=str(error),
            code=code,
            retry_in=policy.delay(item.attempts, retry_after),
        )
    verdict.platform_up = platform_up
    return verdict


def record(verdicts: list[Verdict]) -> set[str]:
    """Write ``verdicts`` in the current transaction; return the platforms of released rows.

    Rows that waited on a row now final become due at once (a dependent of a dead row then
    dies with ``dependency_failed`` at its next claim instead of polling), and rows that ended
    with a row now delivered come back (``follow_dependencies``).
    """
    if not verdicts:
        return set()
    now = utcnow()
    changes = []
    attempts = []
    given_back = []
    for verdict in verdicts:
        row: dict[str, Any] = {"id": verdict.item_id, "state": verdict.state}
        if not verdict.counted:
            given_back.append(verdict.item_id)
        if verdict.outcome is not None:
            row |= {"last_error": verdict.error, "last_error_code": verdict.code}
            attempts.append(
                {
                    "outbox_id": verdict.item_id,
                    "platform_id": verdict.platform_id,
                    "started_at": verdict.started_at or now,
                    "duration_ms": verdict.duration_ms,
                    "outcome": verdict.outcome,
                    "error": verdict.error,
                    "error_code": verdict.code,
                }
            )
        if verdict.state == "skipped":
            row |= {"skipped_reason": verdict.error, "last_error_code": verdict.code}
        if verdict.result is not None:
            row["result"] = verdict.result
        if verdict.state in FINAL_STATES:
            row["completed_at"] = now
        if verdict.retry_in is not None:
            row["next_attempt_at"] = now + timedelta(seconds=verdict.retry_in)
        changes.append(row)
    db.session.execute(update(OutboxItem), changes)
    if given_back:
        db.session.execute(
            update(OutboxItem)
            .where(OutboxItem.id.in_(given_back))
            .values(attempts=OutboxItem.attempts - 1),
            execution_options={"synchronize_session": False},
        )
    if attempts:
        db.session.execute(insert(SyncAttempt), attempts)
    released = release_dependents(v.item_id for v in verdicts if v.state in FINAL_STATES)
    return released | follow_dependencies(v.item_id for v in verdicts if v.state == "succeeded")

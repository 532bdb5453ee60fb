"""One delivery turn for claimed rows of one platform: prepare, send, settle.

``Turn.prepare`` and ``Turn.settle`` use the database and run in the job's own thread;
``send`` runs the remote call alone and may run in any thread. Whatever a row's turn ends in
becomes a ``Verdict`` for ``gateway.sync.verdicts.record``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from redis import Redis
from sqlalchemy import select

from gateway.db import db, utcnow
from gateway.federation.models import Platform
from gateway.sync import handlers
from gateway.sync.circuit import CircuitBreaker
from gateway.sync.claims import DEPENDENCY_FAILED, DEPENDENCY_SKIPPED, SKIPPED_WITH_ITS_TRANSFER
from gateway.sync.models import OutboxItem
from gateway.sync.policy import RetryPolicy
from gateway.sync.remote import ConflictError, ConnectorError
from gateway.sync.verdicts import Verdict, dead, failed, postponed, skipped, succeeded

log = logging.getLogger(__name__)

DEPENDENCY_WAIT_SECONDS = 2.0


def breaker_for(connection: Redis, platform_id: str) -> CircuitBreaker:
    """The platform's circuit breaker, configured from the current app."""
    config = current_app.config
    return CircuitBreaker(
        connection,
        platform_id,
        threshold=int(config.get("SYNC_CIRCUIT_THRESHOLD", 5)),
        cooldown=int(config.get("SYNC_CIRCUIT_COOLDOWN_SECONDS", 30)),
    )


@dataclass(frozen=True)
class Sent:
    """What one remote call returned or raised, and when it ran."""

    answer: Any
    error: Exception | None
    started_at: datetime
    duration_ms: int


def send(call: handlers.Call) -> Sent:
    """Make the remote call of ``call``; never raises (the error is the row's outcome)."""
    started_at = utcnow()
    started = time.monotonic()
    try:
        answer, error = call.send() if call.send else None, None
    except Exception as exc:  # noqa: BLE001 - settled per row: one bad row must not sink a batch
        answer, error = None, exc
    return Sent(answer, error, started_at, int((time.monotonic() - started) * 1000))


class Turn:
    """Delivering claimed rows of one platform under one retry policy and circuit breaker."""

    def __init__(self, platform: Platform, policy: RetryPolicy, breaker: CircuitBreaker) -> None:
        self.platform = platform
        self.policy = policy
        self.breaker = breaker

    def waiting_on_dependency(self, items: list[OutboxItem]) -> dict[str, Verdict]:
        """Verdicts for rows whose dependency failed (dead) or is unfinished (put back)."""
        needed = {item.depends_on_id for item in items if item.depends_on_id}
        if not needed:
            return {}
        states = dict(
            db.session.execute(
                select(OutboxItem.id, OutboxItem.state).where(OutboxItem.id.in_(needed))
            ).all()
        )
        verdicts = {}
        for item in items:
            state = states.get(item.depends_on_id) if item.depends_on_id else None
            if state == "skipped" and item.kind == "event":
                # An event an operator gave up on only held the member's next ones in order.
                continue
            if state == "skipped" and item.kind == "reverse_transfer":
                # Neither the transfer nor its reversal: the platform's net is unchanged.
                verdicts[item.id] = skipped(item, SKIPPED_WITH_ITS_TRANSFER, DEPENDENCY_SKIPPED)
            elif state in ("dead", "skipped"):
                verdicts[item.id] = dead(
                    item,
                    f"depends on {item.depends_on_id}, which is {state}",
                    DEPENDENCY_FAILED,
                )
            elif state in ("pending", "running"):
                verdicts[item.id] = postponed(item, DEPENDENCY_WAIT_SECONDS)
        return verdicts

    def prepare(
        self, items: list[OutboxItem]
    ) -> tuple[list[tuple[OutboxItem, handlers.Call]], list[Verdict]]:
        """Calls to send for ``items``, and verdicts for those settled without a call."""
        blocked = self.waiting_on_dependency(items)
        links = handlers.Links(self.platform).preload(items)
        calls: list[tuple[OutboxItem, handlers.Call]] = []
        verdicts = list(blocked.values())
        for item in items:
            if item.id in blocked:
                continue
            try:
                call = handlers.prepare(item, self.platform, links)
                if call.send is None:
                    verdict = succeeded(item, call.apply(None))
                    verdict.platform_up = None  # nothing was asked of the platform
                    verdicts.append(verdict)
                    continue
            except handlers.NotReady as exc:
                # Our side is not ready (a registration still running): no attempt, no failure.
                verdicts.append(postponed(item, exc.retry_after or 2.0))
                continue
            except Exception as exc:  # noqa: BLE001 - the row fails, the batch goes on
                verdict = self._failed(item, exc)
                verdict.platform_up = None  # raised on our side, before any call
                verdicts.append(verdict)
                continue
            calls.append((item, call))
        return calls, verdicts

    def settle(self, item: OutboxItem, call: handlers.Call, sent: Sent) -> Verdict:
        """The verdict on a sent call (local changes of a success are applied here)."""
        if sent.error is None:
            verdict = succeeded(item, call.apply(sent.answer))
        elif isinstance(sent.error, ConflictError):
            verdict = succeeded(
                item, handlers.resolve_conflict(item, self.platform, sent.error), conflict=True
            )
        else:
            verdict = self._failed(item, sent.error)
        verdict.started_at = sent.started_at
        verdict.duration_ms = sent.duration_ms
        return verdict

    def _failed(self, item: OutboxItem, error: Exception) -> Verdict:
        if not isinstance(error, ConnectorError):
            # A bug of ours, not the platform's answer: retried with backoff like a fault, and
            # logged with its traceback (row id only: payloads may hold personal data).
            log.error("delivery of outbox row %s raised", item.id, exc_info=error)
        return failed(item, error, self.policy)

    def account(self, verdicts: list[Verdict]) -> bool:
        """Tell the circuit breaker how the platform answered; True when its circuit opened."""
        # Successes first: they happened in the same window as the failures, and the breaker
        # opens on the share of failures, not on their order within one batch.
        self.breaker.record_success(sum(1 for v in verdicts if v.platform_up))
        opened = False
        for verdict in verdicts:
            if verdict.platform_up is False:
                opened = self.breaker.record_failure() or opened
        return opened

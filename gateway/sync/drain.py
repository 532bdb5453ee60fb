"""The drain job: one platform's due outbox rows, delivered several at a time by one job.

A drain takes as many of the platform's concurrency slots as it may (at most ``MAX_THREADS``)
and keeps that many calls in flight from a thread pool: while they run, the job's own thread
writes the verdicts of the calls that finished and claims the next rows in the same commit,
so a batch of deliveries costs one commit, not two per row, and no RQ job per row. It stops
when no claimable row is left, or when its time slice ends, then hands over to a new drain, so
a long backlog moves between workers and a lease never runs out under a live drain. When the
platform's concurrency is larger than one drain's threads, a drain with a backlog queues a
helper, so several workers drain one platform in parallel.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import timedelta

from sqlalchemy import bindparam, update

from gateway.db import db, utcnow
from gateway.federation.models import Platform
from gateway.jobs import task
from gateway.redis_client import get_redis
from gateway.sync import handlers
from gateway.sync.claims import claim_due, has_due, next_due
from gateway.sync.delivery import Sent, Turn, breaker_for, send
from gateway.sync.dispatch import (
    DRAIN_MARKER,
    enqueue_drain,
    ensure_drains,
    lease_seconds,
    marker_seconds,
    wake,
)
from gateway.sync.limits import PREFIX as SLOTS_PREFIX
from gateway.sync.limits import SLOT_LEASE_SECONDS, HeldSlots, platform_slots
from gateway.sync.models import OutboxItem
from gateway.sync.policy import policy_for
from gateway.sync.verdicts import Verdict, record

MAX_THREADS = 8
SLICE_SECONDS = 10.0
# Calls queued per thread: one running and two waiting, so the threads never idle while the
# job's thread writes the verdicts of the last ones and claims the next; and it does that once
# per thread's worth of finished calls times ``SETTLE_PER_THREAD``, so its fixed cost per round
# (a claim and a commit) is shared by several rows.
DEPTH_PER_THREAD = 3
SETTLE_PER_THREAD = 2
NO_SLOT_RETRY_SECONDS = 1.0

InFlight = dict[Future[Sent], tuple[OutboxItem, handlers.Call]]

# Only rows still running are renewed: a row whose lease ran out may be another drain's now.
_RENEW = (
    update(OutboxItem)
    .where(OutboxItem.id.in_(bindparam("ids", expanding=True)), OutboxItem.state == "running")
    .values(next_attempt_at=bindparam("lease_until"))
)


@task
def drain(platform_id: str) -> str:
    """Deliver the platform's due outbox rows until none is left or the time slice ends."""
    return Drain(platform_id).run()


class Drain:
    """One run of the drain job for one platform."""

    def __init__(self, platform_id: str) -> None:
        self.platform_id = platform_id
        self.redis = get_redis()
        self.marker = DRAIN_MARKER + platform_id
        self.lease = lease_seconds()
        self.settled = 0
        self.out_of_time = False
        self.slots: HeldSlots | None = None
        # Renewed when a third of the lease is gone: two renewals may fail before it runs out.
        self.renew_every = self.lease / 3
        self._renew_at = time.monotonic() + self.renew_every
        self._held: set[str] = set()  # rows whose call is in flight

    def run(self) -> str:
        """The whole job: admission, the delivery loop, then the hand-over."""
        self.redis.set(self.marker, "1", ex=marker_seconds())
        platform = db.session.get(Platform, self.platform_id)
        if platform is None or not platform.enabled:
            # Its rows wait; the sweeper dispatches them again once the platform is enabled.
            self.redis.delete(self.marker)
            return "platform disabled"
        breaker = breaker_for(self.redis, platform.id)
        wait_seconds, probe = breaker.admit()
        if wait_seconds > 0:
            self.redis.delete(self.marker)
            wake(platform.id, wait_seconds)
            return "circuit open"
        self.turn = Turn(platform, policy_for(platform.connector), breaker)
        # Half-open: the single probe is one call; its success lets the next drain go full.
        wanted = 1 if probe else min(platform.max_concurrency, MAX_THREADS)
        holder = f"drain-{uuid.uuid4().hex}"
        limit = platform.max_concurrency
        slot_lease = min(self.lease, SLOT_LEASE_SECONDS)
        with platform_slots(self.redis, platform.id, holder, wanted, limit, slot_lease) as slots:
            if slots.count == 0:
                # Whoever holds the slots is draining; look again soon in case it died with them.
                self.redis.delete(self.marker)
                wake(platform.id, NO_SLOT_RETRY_SECONDS)
                return "no free slot"
            self.slots = slots
            self._deliver(slots.count, probe, helpers_possible=not probe and wanted < limit)
        self._hand_over()
        return f"{self.settled} row(s) settled"

    def _deliver(self, threads: int, probe: bool, helpers_possible: bool) -> None:
        depth = 1 if probe else threads * DEPTH_PER_THREAD
        deadline = time.monotonic() + min(SLICE_SECONDS, self.lease / 2)
        inflight: InFlight = {}
        settled: list[Verdict] = []
        claiming = True
        with ThreadPoolExecutor(threads, thread_name_prefix="drain") as pool:
            while True:
                self._keep_slots()
                claimed: list[OutboxItem] = []
                if claiming and time.monotonic() >= deadline:
                    claiming, self.out_of_time = False, True
                if claiming and len(inflight) < depth:
                    room = depth - len(inflight)
                    claimed = claim_due(self.platform_id, room, self.lease)
                    if helpers_possible and len(claimed) == room:
                        self._call_for_help()
                calls, immediate = self.turn.prepare(claimed)
                settled += immediate
                released_here = False
                self._held = {item.id for item, _ in inflight.values()}
                if claimed or settled or self._lease_due():
                    released_here = self._commit(settled)
                    settled = []
                for item, call in calls:
                    inflight[pool.submit(send, call)] = (item, call)
                if probe and calls:
                    claiming = False
                if not inflight:
                    if claimed or (claiming and released_here):
                        continue  # rows just made due (a registration's dependents) go now
                    break
                finished = self._collect(
                    inflight, at_least=min(threads * SETTLE_PER_THREAD, len(inflight))
                )
                if self.turn.account(finished):
                    claiming = False  # the circuit opened: finish what is in flight, then stop
                settled += finished

    def _collect(self, inflight: InFlight, at_least: int) -> list[Verdict]:
        """Wait until ``at_least`` calls finished; settle every finished one."""
        verdicts: list[Verdict] = []
        # Back to the loop when the rows' lease is due for renewal: it renews in its commit.
        while len(verdicts) < at_least and not self._lease_due():
            done, _ = wait(inflight, timeout=self._renew_every(), return_when=FIRST_COMPLETED)
            self._keep_slots()  # slow calls must not let the slots' lease run out
            for future in done:
                item, call = inflight.pop(future)
                verdicts.append(self.turn.settle(item, call, future.result()))
        return verdicts

    def _keep_slots(self) -> None:
        if self.slots is not None:
            self.slots.keep_alive()

    def _renew_every(self) -> float:
        wait = max(0.0, self._renew_at - time.monotonic())
        return min(wait, self.slots.renew_every) if self.slots is not None else wait

    def _lease_due(self) -> bool:
        return time.monotonic() >= self._renew_at

    def _renew_leases(self) -> None:
        """Push back the lease of the rows in flight (in the commit that follows)."""
        if self._held:
            db.session.execute(
                _RENEW,
                {
                    "ids": sorted(self._held),
                    "lease_until": utcnow() + timedelta(seconds=self.lease),
                },
                execution_options={"synchronize_session": False},
            )
        self._renew_at = time.monotonic() + self.renew_every

    def _commit(self, verdicts: list[Verdict]) -> bool:
        """Write verdicts (with the rows just claimed) in one commit; wake released rows.

        True when rows of this platform were released: this drain's next claim takes them.
        """
        released = record(verdicts)
        self._held -= {verdict.item_id for verdict in verdicts}
        if self._lease_due():
            self._renew_leases()
        db.session.commit()
        self.settled += len(verdicts)
        self.redis.set(self.marker, "1", ex=marker_seconds())
        here = self.platform_id in released
        released.discard(self.platform_id)
        if released:
            ensure_drains(released)
        return here

    def _call_for_help(self) -> None:
        """A backlog and free slots beyond ours: queue another drain (one per second at most)."""
        key = f"{SLOTS_PREFIX}{self.platform_id}:helper"
        if self.redis.set(key, "1", nx=True, ex=1):
            enqueue_drain(self.platform_id)

    def _hand_over(self) -> None:
        """Stop so that no row is left behind: the last look happens after the marker is gone."""
        self.redis.delete(self.marker)
        db.session.rollback()  # a fresh transaction sees rows committed since our last claim
        opened_for = self.turn.breaker.opened_for()
        if opened_for > 0:
            wake(self.platform_id, opened_for)
        elif self.out_of_time or has_due(self.platform_id):
            ensure_drains([self.platform_id])
        else:
            upcoming = next_due(self.platform_id)
            if upcoming is not None:
                wake(self.platform_id, (upcoming - utcnow()).total_seconds())

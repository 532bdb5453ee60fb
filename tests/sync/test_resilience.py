"""Circuit breaker, per-platform slots, and the sweeper that makes Redis disposable."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from gateway.db import db, utcnow
from gateway.sync.circuit import CircuitBreaker
from gateway.sync.dispatch import DRAIN_MARKER
from gateway.sync.drain import drain
from gateway.sync.jobs import sweep
from gateway.sync.limits import platform_slots
from gateway.sync.models import OutboxItem
from gateway.sync.policy import RetryPolicy
from tests.sync.conftest import BASE, consent, member_json

PROBLEM = "application/problem+json"


def test_backoff_is_jittered_exponential_with_a_cap():
    policy = RetryPolicy(base_seconds=2, cap_seconds=60, max_attempts=5)
    for attempt in range(1, 10):
        ceiling = min(60, 2 * 2 ** (attempt - 1))
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # spread over the range, not a constant
    assert policy.delay(1, retry_after=30) >= 30
    assert policy.gives_up_after(5)
    assert not policy.gives_up_after(4)


def test_circuit_opens_after_repeated_failures_and_probes_once(redis_conn):
    breaker = CircuitBreaker(redis_conn, "p1", threshold=3, window=60, cooldown=1)
    assert breaker.state() == "closed"
    assert not breaker.record_failure()
    assert not breaker.record_failure()
    assert breaker.record_failure()
    assert breaker.state() == "open"
    assert breaker.blocked_for() > 0
    redis_conn.hset("gateway:circuit:p1", "opened_until", 0)  # the cooldown has passed
    assert breaker.state() == "half-open"
    assert breaker.blocked_for() == 0  # the probe
    assert breaker.blocked_for() > 0  # everyone else waits for the probe
    breaker.record_success()
    assert breaker.state() == "closed"


def test_a_failed_probe_reopens_the_circuit(redis_conn):
    breaker = CircuitBreaker(redis_conn, "p2", threshold=1, cooldown=30)
    breaker.record_failure()
    redis_conn.hset("gateway:circuit:p2", "opened_until", 0)
    assert breaker.blocked_for() == 0
    assert breaker.record_failure()
    assert breaker.state() == "open"


def test_an_open_circuit_holds_deliveries_without_calling(app, platform, partner):
    with app.app_context():
        _, item = consent(platform)
        breaker = CircuitBreaker(app.extensions["redis"], platform.id, threshold=1)
        breaker.record_failure()
        assert drain(platform.id) == "circuit open"
        db.session.expire_all()
        row = db.session.get(OutboxItem, item.id)
        assert (row.state, row.attempts) == ("pending", 0)
        assert not [c for c in partner.calls if "/v1/" in c.request.url]


def test_failures_of_one_platform_do_not_hold_another(app, platform, partner):
    with app.app_context():
        CircuitBreaker(app.extensions["redis"], "some-other-platform", threshold=1).record_failure()
        member, item = consent(platform)
        partner.post(f"{BASE}/v1/members", status=201, json=member_json(member.id))
        drain(platform.id)
        db.session.expire_all()
        assert db.session.get(OutboxItem, item.id).state == "succeeded"


def test_slots_limit_concurrency_and_free_on_release(redis_conn):
    with (
        platform_slots(redis_conn, "p", "a", wanted=1, limit=2) as first,
        platform_slots(redis_conn, "p", "b", wanted=1, limit=2) as second,
        platform_slots(redis_conn, "p", "c", wanted=1, limit=2) as third,
    ):
        assert (first.count, second.count, third.count) == (1, 1, 0)
    with platform_slots(redis_conn, "p", "d", wanted=2, limit=2) as again:
        assert again.count == 2


def test_a_dead_holder_frees_its_slot_when_the_lease_ends(redis_conn):
    redis_conn.zadd("gateway:slots:p", {"killed-worker": 0})  # lease long expired
    with platform_slots(redis_conn, "p", "x", wanted=1, limit=1) as slots:
        assert slots.count == 1


def test_a_drains_slots_live_while_renewed_and_free_soon_after_it_dies(redis_conn):
    import time

    with platform_slots(redis_conn, "p", "live", wanted=2, limit=3, lease_seconds=0.9) as live:
        assert live.count == 2
        with platform_slots(redis_conn, "p", "killed", wanted=5, limit=3, lease_seconds=0.9) as k:
            assert k.count == 1  # one slot was left
            k.members.clear()  # as if its worker died: nothing renews or releases it any more
            for _ in range(6):  # 1.5 s: past both leases, but the live drain renews its own
                time.sleep(0.25)
                live.keep_alive()
            with platform_slots(redis_conn, "p", "next", wanted=5, limit=3) as after:
                assert after.count == 1  # the dead holder's slot is free; the live ones are not


def test_full_platform_postpones_without_counting(app, platform, partner):
    with app.app_context():
        platform = db.session.merge(platform)
        platform.max_concurrency = 1
        db.session.commit()
        _, item = consent(platform)
        redis = app.extensions["redis"]
        with platform_slots(redis, platform.id, "busy", wanted=1, limit=1):
            assert drain(platform.id) == "no free slot"
        db.session.expire_all()
        assert db.session.get(OutboxItem, item.id).attempts == 0


def test_sweeper_reenqueues_rows_whose_job_vanished(app, platform):
    with app.app_context():
        consent(platform)
        queue = app.extensions["queue"]
        assert queue.count == 1
        app.extensions["redis"].flushdb()  # every job and marker is gone
        assert sweep() == {"expired_leases": 0, "reenqueued": 1}
        assert queue.count == 1
        assert sweep() == {"expired_leases": 0, "reenqueued": 0}  # the marker says it waits


def test_sweeper_frees_rows_of_a_killed_worker(app, platform):
    with app.app_context():
        _, item = consent(platform)
        db.session.execute(
            update(OutboxItem)
            .where(OutboxItem.id == item.id)
            .values(state="running", attempts=1, next_attempt_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
        app.extensions["redis"].delete(DRAIN_MARKER + item.platform_id)
        assert sweep()["expired_leases"] == 1
        db.session.expire_all()
        assert db.session.get(OutboxItem, item.id).state == "pending"


def test_occasional_failures_among_successes_keep_the_circuit_closed(redis_conn):
    breaker = CircuitBreaker(redis_conn, "p3", threshold=3, window=60)
    for _ in range(10):
        breaker.record_success()
        breaker.record_success()
        assert not breaker.record_failure()  # one failure in three calls
    assert breaker.state() == "closed"
    for _ in range(20):
        opened = breaker.record_failure()
        if opened:
            break
    assert opened
    assert breaker.state() == "open"

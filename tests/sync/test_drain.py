"""The drain job: one platform's due rows delivered several at a time, within its limits."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

from sqlalchemy import func, select

from gateway.db import db, utcnow
from gateway.federation.models import PlatformLink
from gateway.sync.circuit import CircuitBreaker
from gateway.sync.claims import claim_due
from gateway.sync.drain import drain
from gateway.sync.models import OutboxItem, SyncAttempt
from gateway.sync.outbox import record_effect
from tests.factories import create_member
from tests.sync.conftest import BASE, consent_and_update, member_json


class _Partner:
    """Answers member registrations after a short delay and counts calls in flight."""

    def __init__(self, delay: float = 0.02, status: int = 201) -> None:
        self.delay = delay
        self.status = status
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        self.calls = 0

    def __call__(self, request):
        with self.lock:
            self.in_flight += 1
            self.calls += 1
            n = self.calls
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
            if self.status >= 400:
                return self.status, {}, json.dumps({"title": "down", "status": self.status})
            body = json.loads(request.body)
            return 201, {}, json.dumps(member_json(body["external_id"], n))
        finally:
            with self.lock:
                self.in_flight -= 1


def _registrations(platform, count: int) -> list[str]:
    """``count`` members with consent, their registration rows written in one commit."""
    members = [create_member() for _ in range(count)]
    ids = []
    for member in members:
        db.session.add(PlatformLink(member_id=member.id, platform_id=platform.id))
        ids.append(
            record_effect(platform_id=platform.id, kind="register_member", member_id=member.id).id
        )
    db.session.commit()
    return ids


def _states() -> dict[str, int]:
    db.session.expire_all()
    return dict(
        db.session.execute(select(OutboxItem.state, func.count()).group_by(OutboxItem.state)).all()
    )


def _set_concurrency(platform, limit: int):
    platform = db.session.merge(platform)
    platform.max_concurrency = limit
    db.session.commit()
    return platform


def test_a_commit_of_many_rows_queues_one_drain(app, platform):
    with app.app_context():
        queue = app.extensions["queue"]
        _registrations(platform, 5)
        assert [job.func_name for job in queue.jobs] == ["gateway.sync.drain.drain"]
        _registrations(platform, 5)  # a drain is already coming: no second one
        assert queue.count == 1


def test_a_drain_delivers_every_due_row_within_the_platform_limit(app, platform, partner):
    answers = _Partner()
    partner.add_callback("POST", f"{BASE}/v1/members", callback=answers)
    with app.app_context():
        platform = _set_concurrency(platform, 3)
        _registrations(platform, 12)
        assert drain(platform.id) == "12 row(s) settled"
        assert _states() == {"succeeded": 12}
        assert answers.calls == 12
        assert 1 < answers.most_in_flight <= 3
        outcomes = db.session.scalars(select(SyncAttempt.outcome)).all()
        assert outcomes == ["ok"] * 12
        links = db.session.scalars(select(PlatformLink.state)).all()
        assert set(links) == {"active"}


def test_a_claim_takes_no_more_rows_than_asked_oldest_first(app, platform):
    with app.app_context():
        ids = _registrations(platform, 30)
        now = utcnow()
        for age, outbox_id in enumerate(ids):
            db.session.get(OutboxItem, outbox_id).next_attempt_at = now - timedelta(seconds=age)
        db.session.commit()
        claimed = claim_due(platform.id, 5, lease_seconds=60)
        db.session.commit()
        assert [item.id for item in claimed] == ids[-1:-6:-1]
        assert _states() == {"running": 5, "pending": 25}
        assert {item.attempts for item in claimed} == {1}


def test_a_registration_goes_before_the_rows_that_wait_for_it(app, platform, partner):
    with app.app_context():
        member, _registration, update = consent_and_update(platform)
        partner.post(f"{BASE}/v1/members", status=201, json=member_json(member.id))
        partner.patch(f"{BASE}/v1/members/tr-m1", json=member_json(member.id))
        assert drain(platform.id) == "2 row(s) settled"
        assert _states() == {"succeeded": 2}
        writes = [
            (c.request.method, c.request.url) for c in partner.calls if "/v1/" in c.request.url
        ]
        assert writes == [("POST", f"{BASE}/v1/members"), ("PATCH", f"{BASE}/v1/members/tr-m1")]
        assert db.session.get(OutboxItem, update.id).attempts == 1


def test_a_circuit_that_opens_stops_the_drain_and_schedules_it_again(app, platform, partner):
    answers = _Partner(delay=0.0, status=503)
    partner.add_callback("POST", f"{BASE}/v1/members", callback=answers)
    app.config["SYNC_CIRCUIT_THRESHOLD"] = 2
    with app.app_context():
        platform = _set_concurrency(platform, 1)
        _registrations(platform, 10)
        app.extensions["queue"].empty()
        drain(platform.id)
        breaker = CircuitBreaker(app.extensions["redis"], platform.id)
        assert breaker.state() == "open"
        assert answers.calls < 10  # the rest was never tried against a platform that is down
        states = _states()
        assert states == {"pending": 10}
        untried = db.session.scalar(
            select(func.count()).select_from(OutboxItem).where(OutboxItem.attempts == 0)
        )
        assert untried == 10 - answers.calls
        scheduled = app.extensions["queue"].scheduled_job_registry.get_job_ids()
        assert len(scheduled) == 1  # a drain wakes when the cooldown ends


def test_a_disabled_platform_is_left_alone(app, platform, partner):
    with app.app_context():
        _registrations(platform, 3)
        db.session.merge(platform).enabled = False
        db.session.commit()
        assert drain(platform.id) == "platform disabled"
        assert _states() == {"pending": 3}
        assert not [c for c in partner.calls if "/v1/" in c.request.url]


def test_a_backlog_beyond_one_drain_s_threads_calls_a_helper(app, platform, partner):
    answers = _Partner(delay=0.0)
    partner.add_callback("POST", f"{BASE}/v1/members", callback=answers)
    with app.app_context():
        platform = _set_concurrency(platform, 12)  # more than one drain's 8 threads
        _registrations(platform, 40)
        queue = app.extensions["queue"]
        queue.empty()
        assert drain(platform.id) == "40 row(s) settled"
        assert answers.most_in_flight <= 8
        # Another worker was asked to take the other slots while the backlog lasted.
        assert "gateway.sync.drain.drain" in [job.func_name for job in queue.jobs]

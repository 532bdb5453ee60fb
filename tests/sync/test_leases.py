"""Rows a drain holds stay its own while it lives, and come back soon after it dies."""

from __future__ import annotations

import json
import time

from sqlalchemy import update

from gateway.db import db, utcnow
from gateway.schedule import periodic_jobs
from gateway.sync.drain import drain
from gateway.sync.jobs import sweep
from gateway.sync.models import OutboxItem
from tests.sync.conftest import BASE, consent, member_json


def test_a_live_drain_renews_the_lease_of_the_rows_it_holds(app, platform, partner):
    """A call that outlasts the lease: a sweep meanwhile must not take the row back."""
    app.config["SYNC_LEASE_SECONDS"] = 1
    engine = app.extensions["db"].engine
    taken_back = []

    with app.app_context():
        member, item = consent(platform)

        def slow_registration(_request):
            time.sleep(1.5)  # past the first lease: only a renewed one still holds
            with engine.begin() as connection:  # what the sweeper's expire_leases does
                freed = connection.execute(
                    update(OutboxItem)
                    .where(OutboxItem.state == "running", OutboxItem.next_attempt_at < utcnow())
                    .values(state="pending")
                ).rowcount
            taken_back.append(freed)
            return 201, {}, json.dumps(member_json(member.id))

        partner.add_callback("POST", f"{BASE}/v1/members", callback=slow_registration)
        drain(platform.id)
        db.session.rollback()
        row = db.session.get(OutboxItem, item.id)
        assert taken_back == [0]
        assert (row.state, row.attempts) == ("succeeded", 1)


def test_a_dead_worker_s_rows_are_back_within_30_seconds(app):
    """Its rows' lease runs out (no renewal) and the next sweep frees them."""
    sweep_every = next(job.interval for job in periodic_jobs(app.config) if job.func is sweep)
    assert app.config["SYNC_LEASE_SECONDS"] + sweep_every <= 30

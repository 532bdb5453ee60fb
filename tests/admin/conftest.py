"""Fixtures for the admin tests: an operator, a platform with items in every state."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.callbacks.models import InboxEvent
from gateway.db import db, utcnow
from gateway.federation.platforms import add_platform
from gateway.sync.models import OutboxItem, SyncAttempt
from tests.auth.oidc_helpers import log_in
from tests.factories import bearer_headers, create_member


@pytest.fixture
def operator(app):
    with app.app_context():
        return create_member(email="op@example.org", is_admin=True, locale="en")


@pytest.fixture
def admin_headers(app):
    with app.app_context():
        return bearer_headers("admin")


@pytest.fixture
def operator_client(app, operator):
    client = app.test_client()
    log_in(client, operator)
    return client


@pytest.fixture
def seeded(app):
    """A platform 'tr' with a dead, a pending, a succeeded item and a parked callback."""
    with app.app_context():
        platform = add_platform(
            "tr",
            "timerepublik",
            "https://tr.example/api",
            credentials={"client_id": "x", "client_secret": "y"},
            display_name="TimeRepublik",
        )
        now = utcnow()
        rows = {}
        for n, state in enumerate(("dead", "pending", "succeeded")):
            item = OutboxItem(
                platform_id=platform.id,
                kind="push_transfer",
                state=state,
                attempts=3 if state == "dead" else 0,
                last_error="HTTP 503 from the platform" if state == "dead" else None,
                created_at=now - timedelta(minutes=10 - n),
                completed_at=now if state in ("succeeded", "dead") else None,
            )
            db.session.add(item)
            db.session.flush()
            rows[state] = item.id
            db.session.add(
                SyncAttempt(
                    outbox_id=item.id,
                    platform_id=platform.id,
                    started_at=now - timedelta(minutes=5 - n),
                    duration_ms=20,
                    outcome="dead" if state == "dead" else "ok",
                    error="HTTP 503" if state == "dead" else None,
                )
            )
        event = InboxEvent(
            platform_id=platform.id,
            webhook_id="evt_1",
            event_type="transfer.completed",
            body="{}",
            state="parked",
            parked_reason="unknown wallet w-9",
        )
        db.session.add(event)
        db.session.commit()
        rows["event"] = event.id
        rows["platform_id"] = platform.id
        return rows

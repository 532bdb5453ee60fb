"""Fixtures for the sync engine: a platform on a mocked partner API and a worker to run jobs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses
from rq import SimpleWorker

from gateway.db import db
from gateway.federation.models import Platform, PlatformLink
from gateway.sync.outbox import record_effect
from tests.factories import create_member

BASE = "https://partner.timerepublik.test/api"


@pytest.fixture
def partner() -> Iterator[responses.RequestsMock]:
    """The partner API, mocked; the token endpoint always answers."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(
            f"{BASE}/oauth/token",
            json={"access_token": "partner-token", "token_type": "Bearer", "expires_in": 3600},
        )
        yield mock


@pytest.fixture
def platform(app) -> Platform:
    """An enabled TimeRepublik platform."""
    with app.app_context():
        row = Platform(name="timerepublik", connector="timerepublik", base_url=BASE)
        row.credentials = {"client_id": "gateway", "client_secret": "partner-secret"}
        db.session.add(row)
        db.session.commit()
        return row


@pytest.fixture
def run_jobs(app):
    """Run every queued job (and nothing scheduled for later) in this process."""

    def run() -> bool:
        queue = app.extensions["queue"]
        worker = SimpleWorker([queue], connection=app.extensions["redis"])
        with app.app_context():
            return worker.work(burst=True)

    return run


def consent(platform: Platform, **member_fields):
    """A member with a pending link and the registration row consent writes; committed."""
    member = create_member(**member_fields)
    db.session.add(PlatformLink(member_id=member.id, platform_id=platform.id))
    item = record_effect(
        platform_id=platform.id,
        kind="register_member",
        member_id=member.id,
        payload={"fields": ["locale", "skills"]},
    )
    db.session.commit()
    return member, item


def consent_and_update(platform: Platform):
    """``consent``, then an update of the member that waits for its registration; committed."""
    member, registration = consent(platform)
    update = record_effect(
        platform_id=platform.id,
        kind="update_member",
        member_id=member.id,
        depends_on=registration,
    )
    db.session.commit()
    return member, registration, update


def member_json(member_id: str, n: int = 1, email: str = "m@example.org") -> dict:
    """The partner's answer for a created member."""
    return {
        "id": f"tr-m{n}",
        "wallet_id": f"tr-w{n}",
        "status": "active",
        "created_at": "2026-11-24T10:00:00Z",
        "external_id": member_id,
        "email": email,
        "display_name": "Someone",
        "locale": "it",
        "skills": [],
    }


# The sandbox timebank as a partner with real HTTP semantics (tests/sync/sandbox_partner.py).
from tests.sync.sandbox_partner import sandbox_partner  # noqa: E402, F401

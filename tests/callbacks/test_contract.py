"""The door checks every event against the platform's contract, and tells its faults from ours.

A bad event is refused with a 4xx problem and never stored; an event type the contract may add
later is acknowledged and kept as ignored; a fault of ours (a platform we cannot read events
for, a database that fails) is a 5xx, so the partner keeps the event and sends it again.
"""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY
from rq import SimpleWorker
from sqlalchemy import func, select, text

from gateway.callbacks.models import InboxEvent
from gateway.db import db
from gateway.federation.models import Platform, WebhookSecret
from gateway.ledger.models import Transaction
from tests.callbacks.conftest import OTHER_SECRET, SECRET, signed, transfer_event


def _count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(InboxEvent))


def _post(client, event, secret=SECRET, name="tr"):
    body, headers = signed(event, secret=secret)
    return client.post(f"/callbacks/{name}", data=body, headers=headers)


def _with(event: dict, **data) -> dict:
    return {**event, "data": {**event["data"], **data}}


def _metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"minutes": 0}, "minutes"),
        ({"minutes": -30}, "minutes"),
        ({"minutes": 14401}, "minutes"),
        ({"minutes": 10**12}, "minutes"),
        ({"minutes": 1.5}, "minutes"),
        ({"minutes": "30"}, "minutes"),
        ({"minutes": True}, "minutes"),
        ({"minutes": None}, "minutes"),
        ({"id": ""}, "id"),
        ({"payee_wallet_id": ""}, "payee_wallet_id"),
        ({"payee_wallet_id": "w-a"}, "same wallet"),
        ({"status": "pending"}, "status"),
        ({"created_at": "yesterday"}, "created_at"),
        ({"occurred_at": "2026-11-24T10:00:00"}, "occurred_at"),
        ({"reversal_of": 7}, "reversal_of"),
        ({"external_reference": 12}, "external_reference"),
        ({"description": ["x"]}, "description"),
    ],
)
def test_a_transfer_breaking_the_contract_is_refused_and_not_stored(
    app, client, platform, change, named
):
    response = _post(client, _with(transfer_event("t1"), **change))
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["type"].endswith("/invalid-event")
    assert named in problem["detail"]
    assert _count(app) == 0


@pytest.mark.parametrize("minutes", [1, 14400])
def test_the_contract_bounds_themselves_are_accepted(app, client, linked, minutes):
    assert _post(client, transfer_event("t1", minutes=minutes)).status_code == 202


def _member_event(**data) -> dict:
    member = {
        "id": "m-w-a",
        "wallet_id": "w-a",
        "status": "active",
        "created_at": "2026-11-24T10:00:00Z",
        "external_id": "x",
        "email": "a@example.org",
        "display_name": "A",
        "locale": "it",
        "skills": ["cooking"],
    }
    return {
        "id": "evt_member",
        "type": "member.updated",
        "created_at": "2026-11-24T10:00:00Z",
        "data": {**member, **data},
    }


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"status": "banned"}, "status"),
        ({"locale": "fr"}, "locale"),
        ({"display_name": "x" * 121}, "display_name"),
        ({"skills": ["x" * 61]}, "skills"),
        ({"skills": "cooking"}, "skills"),
        ({"created_at": None}, "created_at"),
        ({"wallet_id": ""}, "wallet_id"),
    ],
)
def test_a_member_breaking_the_contract_is_refused(app, client, platform, change, named):
    response = _post(client, _member_event(**change))
    assert response.status_code == 400
    assert named in response.get_json()["detail"]
    assert _count(app) == 0


def test_a_member_event_keeping_the_contract_is_accepted(app, client, platform):
    assert _post(client, _member_event()).status_code == 202


def test_an_unknown_event_type_is_acknowledged_and_ignored(app, client, platform):
    event = {
        "id": "evt_new",
        "type": "wallet.renamed",
        "created_at": "2026-11-24T10:00:00Z",
        "data": {"anything": ["the contract may add"]},
    }
    response = _post(client, event)
    assert response.status_code == 200
    assert response.get_json()["status"] == "ignored"
    with app.app_context():
        row = db.session.scalar(select(InboxEvent))
        assert (row.state, row.event_type) == ("ignored", "wallet.renamed")
    assert app.extensions["queue"].count == 0  # nothing to apply
    # Sent again (the partner's retry): acknowledged again, stored once.
    assert _post(client, event).status_code == 200
    assert _count(app) == 1


def test_an_unknown_event_type_still_needs_the_platform_signature(app, client, platform):
    event = {"id": "evt_new", "type": "wallet.renamed", "created_at": "2026-11-24T10:00:00Z"}
    response = _post(client, event, secret=OTHER_SECRET)
    assert response.status_code == 401
    assert _count(app) == 0


def test_a_different_body_under_a_known_id_is_logged_counted_and_changes_nothing(
    app, client, platform, caplog
):
    first = transfer_event("t1", event_id="evt_same")
    assert _post(client, first).status_code == 202
    before = _metric("gateway_callbacks_conflicting_replays_total", platform="tr")
    # The partner's own retry (same body): a plain duplicate, not counted.
    assert _post(client, first).status_code == 200
    assert _metric("gateway_callbacks_conflicting_replays_total", platform="tr") == before
    other = _with(first, minutes=999, description="a private note about Ada")
    with caplog.at_level(logging.WARNING):
        response = _post(client, other)
    assert response.status_code == 200
    assert response.get_json() == {"status": "duplicate"}
    assert _metric("gateway_callbacks_conflicting_replays_total", platform="tr") == before + 1
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "evt_same" in logged
    assert "different body" in logged
    assert "private note" not in logged
    assert "999" not in logged
    assert "whsec" not in logged
    with app.app_context():
        (row,) = db.session.scalars(select(InboxEvent)).all()
        assert '"minutes": 30' in row.body


def test_a_forged_replay_under_a_known_id_is_refused(app, client, platform):
    first = transfer_event("t1", event_id="evt_same")
    assert _post(client, first).status_code == 202
    before = _metric("gateway_callbacks_conflicting_replays_total", platform="tr")
    response = _post(client, _with(first, minutes=999), secret=OTHER_SECRET)
    assert response.status_code == 401
    assert _metric("gateway_callbacks_conflicting_replays_total", platform="tr") == before


def _bare_platform(app, name: str, connector: str = "timerepublik") -> None:
    """A platform stored before `platforms add` checked configurations: no credentials."""
    with app.app_context():
        row = Platform(name=name, display_name=name, connector=connector, base_url="https://x.test")
        row.credentials = {}
        row.options = {"clearing_wallet_id": "w-clearing"}
        db.session.add(row)
        db.session.flush()
        secret = WebhookSecret(platform_id=row.id)
        secret.secret = SECRET
        db.session.add(secret)
        db.session.commit()


def test_a_platform_without_credentials_still_takes_and_applies_its_events(app, client):
    from gateway.federation.models import PlatformLink
    from tests.factories import create_member

    _bare_platform(app, "bare")
    with app.app_context():
        platform_id = db.session.scalar(select(Platform.id).where(Platform.name == "bare"))
        member = create_member()
        db.session.add(
            PlatformLink(
                member_id=member.id,
                platform_id=platform_id,
                state="active",
                remote_member_id="m-b",
                remote_wallet_id="w-b",
            )
        )
        db.session.commit()
    event = transfer_event("t1", payer="w-clearing", payee="w-b")
    response = _post(client, event, name="bare")
    assert response.status_code == 202
    with app.app_context():
        SimpleWorker([app.extensions["queue"]], connection=app.extensions["redis"]).work(burst=True)
        assert db.session.scalar(select(InboxEvent.state)) == "processed"
        assert db.session.scalar(select(func.count()).select_from(Transaction)) == 1


def test_a_platform_whose_connector_is_gone_is_a_fault_of_ours(app, client, caplog):
    _bare_platform(app, "orphan", connector="uninstalled")
    with caplog.at_level(logging.ERROR):
        response = _post(client, transfer_event("t1"), name="orphan")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert response.mimetype == "application/problem+json"
    assert _count(app) == 0
    assert any("fault of ours" in r.getMessage() for r in caplog.records)


def test_a_database_fault_while_storing_is_a_5xx(app, client, platform):
    with app.app_context():
        db.session.execute(text("ALTER TABLE callback_inbox RENAME TO callback_inbox_away"))
        db.session.commit()
    try:
        response = _post(client, transfer_event("t1"))
    finally:
        with app.app_context():
            db.session.execute(text("ALTER TABLE callback_inbox_away RENAME TO callback_inbox"))
            db.session.commit()
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    # The partner's retry, once the database is back, is taken.
    assert _post(client, transfer_event("t1")).status_code == 202

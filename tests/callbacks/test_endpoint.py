"""POST /callbacks/<platform>: refusals change nothing; accepted events are stored first."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from gateway.callbacks.models import InboxEvent
from gateway.db import db
from gateway.federation.models import Platform
from tests.callbacks.conftest import OTHER_SECRET, signed, transfer_event


def _count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(InboxEvent))


def _post(client, body, headers, name="tr"):
    return client.post(f"/callbacks/{name}", data=body, headers=headers)


def test_a_signed_event_is_stored_and_queued(app, client, platform):
    body, headers = signed(transfer_event("t1"))
    response = _post(client, body, headers)
    assert response.status_code == 202
    assert response.get_json()["status"] == "accepted"
    with app.app_context():
        row = db.session.scalar(select(InboxEvent))
        assert row.state == "received"
        assert row.body == body.decode()
        assert set(row.headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert app.extensions["queue"].count == 1


def test_a_replayed_webhook_id_changes_nothing(app, client, platform):
    event = transfer_event("t1")
    body, headers = signed(event)
    assert _post(client, body, headers).status_code == 202
    tampered = {**event, "data": {**event["data"], "minutes": 999}}
    body2, headers2 = signed(tampered)
    response = _post(client, body2, headers2)
    assert response.status_code == 200
    assert response.get_json() == {"status": "duplicate"}
    with app.app_context():
        rows = db.session.scalars(select(InboxEvent)).all()
        assert len(rows) == 1
        assert rows[0].body == body.decode()


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        (lambda b, h: (b, {**h, "webhook-signature": "v1,AAAA"}), 401),
        (lambda b, h: (b.replace(b"30", b"31"), h), 401),
        (lambda b, h: (b, {k: v for k, v in h.items() if k != "webhook-id"}), 400),
    ],
)
def test_forged_events_are_refused_and_store_nothing(app, client, platform, mutate, status):
    body, headers = mutate(*signed(transfer_event("t1")))
    response = _post(client, body, headers)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert "whsec" not in response.get_data(as_text=True)
    assert _count(app) == 0


def test_expired_events_are_refused(app, client, platform):
    body, headers = signed(transfer_event("t1"), timestamp=time.time() - 600)
    assert _post(client, body, headers).status_code == 401
    assert _count(app) == 0


def test_a_revoked_secret_no_longer_works(app, client, platform):
    from gateway.federation.platforms import add_webhook_secret, revoke_webhook_secret

    with app.app_context():
        row = db.session.merge(platform)
        add_webhook_secret(row, OTHER_SECRET)
        db.session.commit()
        body, headers = signed(transfer_event("t1"), secret=OTHER_SECRET)
        assert _post(client, body, headers).status_code == 202
        revoke_webhook_secret(row, OTHER_SECRET[-4:])
        db.session.commit()
    body, headers = signed(transfer_event("t2"), secret=OTHER_SECRET)
    assert _post(client, body, headers).status_code == 401
    assert _count(app) == 1


def test_oversized_bodies_are_refused(app, client, platform):
    event = transfer_event("t1")
    event["data"]["description"] = "x" * 70_000
    body, headers = signed(event)
    response = _post(client, body, headers)
    assert response.status_code == 413
    assert _count(app) == 0


def test_unknown_and_disabled_platforms_are_404(app, client, platform):
    body, headers = signed(transfer_event("t1"))
    assert _post(client, body, headers, name="nobody").status_code == 404
    with app.app_context():
        db.session.get(Platform, platform.id).enabled = False
        db.session.commit()
    assert _post(client, body, headers).status_code == 404
    assert _count(app) == 0


def test_a_malformed_event_is_400(app, client, platform):
    event = transfer_event("t1")
    del event["data"]["payer_wallet_id"]
    body, headers = signed(event)
    response = _post(client, body, headers)
    assert response.status_code == 400
    assert "payer_wallet_id" in response.get_json()["detail"]
    assert _count(app) == 0


@pytest.mark.parametrize("field", ["type", "description"])
def test_a_nul_in_a_signed_event_is_400_and_stores_nothing(app, client, platform, field):
    event = transfer_event("t1")
    if field == "type":
        event["type"] = "transfer.completed\u0000"
    else:
        event["data"]["description"] = "desk\u0000"
    body, headers = signed(event)
    response = _post(client, body, headers)
    assert response.status_code == 400
    assert "NUL" in response.get_json()["detail"]
    assert _count(app) == 0


def test_stored_even_when_redis_is_down(app, client, platform, unused_port):
    import redis
    from rq import Queue

    from gateway.callbacks.processing import sweep_inbox

    live_redis, live_queue = app.extensions["redis"], app.extensions["queue"]
    dead = redis.Redis.from_url(f"redis://127.0.0.1:{unused_port}/0", socket_connect_timeout=0.2)
    app.extensions["redis"] = dead
    app.extensions["queue"] = Queue("x", connection=dead)
    body, headers = signed(transfer_event("t1"))
    assert _post(client, body, headers).status_code == 202
    with app.app_context():
        assert db.session.scalar(select(InboxEvent.state)) == "received"
    dead.close()
    # Redis is back: nothing was queued, and the sweeper hands the stored event over.
    app.extensions["redis"], app.extensions["queue"] = live_redis, live_queue
    assert live_queue.count == 0
    with app.app_context():
        assert sweep_inbox(older_than_seconds=0) == 1
    assert live_queue.count == 1

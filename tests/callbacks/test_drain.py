"""Handing stored events to workers: one drain job for many events, none stranded or doubled."""

from __future__ import annotations

import pytest
from rq import SimpleWorker
from sqlalchemy import func, select

from gateway.callbacks import drain, processing
from gateway.callbacks.drain import drain_inbox, hand_over
from gateway.callbacks.models import InboxEvent
from gateway.db import db
from gateway.ledger.models import Transaction
from tests.callbacks.conftest import signed, transfer_event


def _receive(client, *events) -> list[str]:
    ids = []
    for event in events:
        body, headers = signed(event)
        response = client.post("/callbacks/tr", data=body, headers=headers)
        assert response.status_code == 202
        ids.append(response.get_json()["id"])
    return ids


def _work(app) -> None:
    with app.app_context():
        SimpleWorker([app.extensions["queue"]], connection=app.extensions["redis"]).work(burst=True)


def _states(app) -> list[str]:
    with app.app_context():
        return sorted(db.session.scalars(select(InboxEvent.state)))


def _imports(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Transaction))


def _keys(app) -> tuple[str, str]:
    with app.app_context():
        return drain._list_key(), drain._marker_key(0)


def test_many_events_start_one_drain_job_that_applies_them_all(app, client, linked, redis_conn):
    _receive(client, *(transfer_event(f"t{n}") for n in range(5)))
    assert app.extensions["queue"].count == 1
    _work(app)
    assert _states(app) == ["processed"] * 5
    assert _imports(app) == 5
    waiting, marker = _keys(app)
    assert redis_conn.llen(waiting) == 0
    assert not redis_conn.exists(marker)


def test_an_event_arriving_while_a_drain_is_pending_starts_no_job(app, client, linked, redis_conn):
    waiting, marker = _keys(app)
    redis_conn.set(marker, "1")  # a drain job is queued or running
    (inbox_id,) = _receive(client, transfer_event("t1"))
    assert app.extensions["queue"].count == 0
    assert redis_conn.lrange(waiting, 0, -1) == [inbox_id.encode()]
    # The running drain finds it: the pusher left it to the job that owns the marker.
    with app.app_context():
        assert drain_inbox() == 1
    assert _states(app) == ["processed"]
    assert not redis_conn.exists(marker)


def test_an_event_handed_over_twice_is_imported_once(app, client, linked):
    (inbox_id,) = _receive(client, transfer_event("t1"))
    with app.app_context():
        hand_over([inbox_id, inbox_id])
    _work(app)
    assert _imports(app) == 1
    assert _states(app) == ["processed"]


def test_a_failing_event_does_not_hold_up_the_others(app, client, linked, monkeypatch, redis_conn):
    bad, *good = _receive(client, *(transfer_event(f"t{n}") for n in range(3)))
    real = processing.process_event

    def failing_for_one(inbox_id: str) -> str:
        if inbox_id == bad:
            raise RuntimeError("the disk is on fire")
        return real(inbox_id)

    monkeypatch.setattr(processing, "process_event", failing_for_one)
    with app.app_context(), pytest.raises(RuntimeError, match="1 callback attempt"):
        drain_inbox()
    with app.app_context():
        states = dict(db.session.execute(select(InboxEvent.id, InboxEvent.state)).all())
    assert states[bad] == "received"  # left for the sweeper
    assert [states[i] for i in good] == ["processed", "processed"]
    assert not redis_conn.exists(_keys(app)[1])


def test_a_backlog_calls_a_helper_drain(app, linked, redis_conn):
    waiting, marker = _keys(app)
    redis_conn.set(marker, "1")
    # Ids of no row: applying them is a no-op, which is all this test needs.
    redis_conn.rpush(waiting, *[f"missing-{n}" for n in range(drain.BATCH * 2 + 1)])
    with app.app_context():
        assert drain_inbox() == drain.BATCH * 2 + 1
        helper_marker = drain._marker_key(1)
    assert app.extensions["queue"].count == 1  # the helper, on slot 1
    assert redis_conn.exists(helper_marker)
    _work(app)  # it finds the list empty and stops
    assert not redis_conn.exists(helper_marker)
    assert not redis_conn.exists(marker)

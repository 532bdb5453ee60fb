"""Every attempt at a stored event counts; a bounded number of them, then ``failed``.

And the sweeper hands events over oldest first, each platform with its share of a sweep, so a
pile of events that keep failing cannot keep a genuine one waiting.
"""

from __future__ import annotations

import pytest
from rq import SimpleWorker
from sqlalchemy import select, text

from gateway.callbacks import processing
from gateway.callbacks.models import InboxEvent
from gateway.callbacks.processing import process_event, reprocess_event, sweep_inbox
from gateway.db import db
from gateway.federation.models import Platform, WebhookSecret
from tests.callbacks.conftest import SECRET, signed, transfer_event
from tests.observability.test_metrics import _value


def _receive(client, event, name: str = "tr") -> str:
    body, headers = signed(event)
    response = client.post(f"/callbacks/{name}", data=body, headers=headers)
    assert response.status_code == 202
    return response.get_json()["id"]


def _row(app, inbox_id: str) -> InboxEvent:
    with app.app_context():
        row = db.session.get(InboxEvent, inbox_id)
        db.session.expunge(row)
        return row


def _work(app) -> None:
    with app.app_context():
        SimpleWorker([app.extensions["queue"]], connection=app.extensions["redis"]).work(burst=True)


class LedgerAway:
    """The ledger's entries table renamed away: a real database error while applying."""

    def __init__(self, app) -> None:
        self.app = app

    def __enter__(self) -> None:
        with self.app.app_context():
            db.session.execute(text("ALTER TABLE ledger_entries RENAME TO ledger_entries_away"))
            db.session.commit()

    def __exit__(self, *exc: object) -> None:
        with self.app.app_context():
            db.session.rollback()
            db.session.execute(text("ALTER TABLE ledger_entries_away RENAME TO ledger_entries"))
            db.session.commit()


def test_a_database_error_while_applying_counts_each_attempt_then_fails(app, client, linked):
    app.config.update(CALLBACK_MAX_ATTEMPTS=3, CALLBACK_BACKOFF_BASE_SECONDS=0)
    inbox_id = _receive(client, transfer_event("t1"))
    app.extensions["queue"].empty()
    with LedgerAway(app):
        for attempt in (1, 2):
            with app.app_context(), pytest.raises(Exception, match="ledger_entries"):
                process_event(inbox_id)
            row = _row(app, inbox_id)
            assert (row.state, row.attempts) == ("received", attempt)
            assert row.parked_reason.startswith(f"attempt {attempt} failed: ")
        with app.app_context(), pytest.raises(Exception, match="ledger_entries"):
            process_event(inbox_id)
    row = _row(app, inbox_id)
    assert (row.state, row.attempts) == ("failed", 3)
    assert row.parked_reason.startswith("failed 3 times; last: ")
    assert "ledger_entries" in row.parked_reason
    # Failed is final: the sweeper leaves it alone, and /metrics shows it.
    with app.app_context():
        assert sweep_inbox(older_than_seconds=0) == 0
        assert process_event(inbox_id) == "failed"
    scraped = app.test_client().get("/metrics").get_data(as_text=True)
    assert _value(scraped, "gateway_callbacks", platform="tr", state="failed") == 1
    assert _value(scraped, "gateway_callbacks", platform="tr", state="received") == 0
    # An operator who fixed the cause applies it again, with a fresh budget.
    with app.app_context():
        assert reprocess_event(inbox_id) == "processed"
    row = _row(app, inbox_id)
    assert (row.state, row.attempts, row.parked_reason) == ("processed", 1, None)


def test_a_failed_attempt_waits_out_its_backoff(app, client, linked):
    app.config.update(CALLBACK_BACKOFF_BASE_SECONDS=600)
    inbox_id = _receive(client, transfer_event("t1"))
    app.extensions["queue"].empty()
    with LedgerAway(app):
        with app.app_context(), pytest.raises(Exception, match="ledger_entries"):
            process_event(inbox_id)
        # Handed over again at once (a duplicate in the list, a sweep): not tried, not counted.
        with app.app_context():
            assert process_event(inbox_id) == "received"
            assert sweep_inbox(older_than_seconds=0) == 0
    row = _row(app, inbox_id)
    assert row.attempts == 1
    assert row.next_attempt_at is not None


def test_an_event_whose_attempts_never_reported_back_fails_in_the_end(app, client, linked):
    app.config.update(CALLBACK_MAX_ATTEMPTS=2)
    inbox_id = _receive(client, transfer_event("t1"))
    with app.app_context():
        # Two attempts claimed by workers that were killed before they could say anything.
        row = db.session.get(InboxEvent, inbox_id)
        row.attempts, row.next_attempt_at = 2, None
        db.session.commit()
        assert process_event(inbox_id) == "failed"
    assert "did not finish" in _row(app, inbox_id).parked_reason


def _failing_for_poison(monkeypatch) -> None:
    real = processing.apply_remote_transfer

    def apply(platform, transfer, **kwargs):
        if transfer.id.startswith("poison"):
            raise RuntimeError("a bug this event keeps hitting")
        return real(platform, transfer, **kwargs)

    monkeypatch.setattr(processing, "apply_remote_transfer", apply)


def test_a_pile_of_failing_events_does_not_starve_a_genuine_one(app, client, linked, monkeypatch):
    _failing_for_poison(monkeypatch)
    for n in range(25):
        _receive(client, transfer_event(f"poison-{n}"))
    good = _receive(client, transfer_event("t-good"))
    app.extensions["redis"].flushdb()  # every hand-over lost: only the sweeper finds them
    for _ in range(3):
        with app.app_context():
            sweep_inbox(older_than_seconds=0, batch=10)
        _work(app)
    assert _row(app, good).state == "processed"
    with app.app_context():
        poison = db.session.scalars(select(InboxEvent).where(InboxEvent.id != good)).all()
        assert {(r.state, r.attempts) for r in poison} == {("received", 1)}
        assert all("a bug this event keeps hitting" in r.parked_reason for r in poison)


def test_each_platform_gets_its_share_of_a_sweep(app, client, linked):
    # A platform we cannot read events for (its connector is gone): every attempt fails.
    with app.app_context():
        orphan = Platform(
            name="orphan", display_name="orphan", connector="uninstalled", base_url="https://x"
        )
        orphan.credentials = {}
        db.session.add(orphan)
        db.session.flush()
        for n in range(40):
            db.session.add(
                InboxEvent(
                    platform_id=orphan.id,
                    webhook_id=f"evt_{n}",
                    event_type="transfer.completed",
                    body="{}",
                    headers={},
                )
            )
        secret = WebhookSecret(platform_id=orphan.id)
        secret.secret = SECRET
        db.session.add(secret)
        db.session.commit()
    good = _receive(client, transfer_event("t-good"))
    app.extensions["redis"].flushdb()
    with app.app_context():
        assert sweep_inbox(older_than_seconds=0, batch=10) == 10
    _work(app)
    assert _row(app, good).state == "processed"
    with app.app_context():
        reasons = db.session.scalars(
            select(InboxEvent.parked_reason).where(InboxEvent.platform_id == orphan.id)
        ).all()
    failed_once = [r for r in reasons if r]
    assert len(failed_once) == 9  # the other place went to the other platform
    assert all("not available" in r for r in failed_once)

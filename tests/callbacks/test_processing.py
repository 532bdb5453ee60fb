"""Processing stored events: exactly-once imports, reversals in any order, parking."""

from __future__ import annotations

import json

from rq import SimpleWorker
from sqlalchemy import func, select

from gateway.callbacks.models import InboxEvent
from gateway.callbacks.processing import reprocess_event, sweep_inbox
from gateway.db import db
from gateway.federation.models import PlatformLink
from gateway.ledger import services as ledger
from gateway.ledger.models import Transaction
from tests.callbacks.conftest import signed, transfer_event
from tests.factories import create_member


def _deliver(app, client, *events):
    for event in events:
        body, headers = signed(event)
        assert client.post("/callbacks/tr", data=body, headers=headers).status_code in (200, 202)
    with app.app_context():
        SimpleWorker([app.extensions["queue"]], connection=app.extensions["redis"]).work(burst=True)


def _states(app) -> dict[str, str]:
    with app.app_context():
        return {r.webhook_id: r.state for r in db.session.scalars(select(InboxEvent))}


def _imports(app) -> int:
    with app.app_context():
        return db.session.scalar(
            select(func.count()).select_from(Transaction).where(Transaction.source == "callback")
        )


def test_a_transfer_imports_between_the_linked_members(app, client, linked):
    alice, bob = linked
    event = transfer_event("t1", minutes=45)
    _deliver(app, client, event)
    assert _states(app) == {event["id"]: "processed"}
    with app.app_context():
        assert ledger.get_balance(ledger.account_for_member(alice.id).id) == -45
        assert ledger.get_balance(ledger.account_for_member(bob.id).id) == 45
        row = db.session.scalar(select(InboxEvent))
        assert row.transaction_id is not None


def test_the_same_transfer_in_two_events_imports_once(app, client, linked):
    _deliver(app, client, transfer_event("t1"), transfer_event("t1"))
    assert _imports(app) == 1
    assert set(_states(app).values()) == {"processed"}


def test_running_the_job_again_changes_nothing(app, client, linked):
    _deliver(app, client, transfer_event("t1"))
    with app.app_context():
        inbox_id = db.session.scalar(select(InboxEvent.id))
        from gateway.callbacks.processing import process_event

        assert process_event(inbox_id) == "processed"
    assert _imports(app) == 1


def test_transfers_we_pushed_are_not_imported_again(app, client, linked):
    _deliver(app, client, transfer_event("t1", reference="gw-txn-1234"))
    assert _imports(app) == 0
    assert set(_states(app).values()) == {"processed"}


def test_a_reversal_before_its_transfer_waits_then_applies(app, client, linked):
    alice, _ = linked
    reversal = transfer_event("t2", payer="w-b", payee="w-a", reversal_of="t1")
    _deliver(app, client, reversal)
    assert _states(app)[reversal["id"]] == "parked"
    original = transfer_event("t1")
    _deliver(app, client, original)
    states = _states(app)
    assert states == {reversal["id"]: "processed", original["id"]: "processed"}
    with app.app_context():
        assert ledger.get_balance(ledger.account_for_member(alice.id).id) == 0
        assert db.session.scalar(select(func.count()).select_from(Transaction)) == 2


def test_a_duplicate_reversal_reverses_once(app, client, linked):
    reversal = transfer_event("t2", payer="w-b", payee="w-a", reversal_of="t1")
    _deliver(app, client, transfer_event("t1"), reversal, {**reversal, "id": "evt_again"})
    with app.app_context():
        assert (
            db.session.scalar(
                select(func.count()).select_from(Transaction).where(Transaction.kind == "reversal")
            )
            == 1
        )


def test_an_unknown_wallet_is_parked_then_reprocessed(app, client, linked, platform):
    event = transfer_event("t1", payer="w-stranger")
    _deliver(app, client, event)
    with app.app_context():
        row = db.session.scalar(select(InboxEvent))
        assert row.state == "parked"
        assert "no linked member" in row.parked_reason
        stranger = create_member()
        db.session.add(
            PlatformLink(
                member_id=stranger.id,
                platform_id=platform.id,
                state="active",
                remote_member_id="m-stranger",
                remote_wallet_id="w-stranger",
            )
        )
        db.session.commit()
        assert reprocess_event(row.id) == "processed"
    assert _imports(app) == 1


def test_the_clearing_wallet_maps_to_the_clearing_account(app, client, linked, platform):
    _, bob = linked
    _deliver(app, client, transfer_event("t1", payer="w-clearing", payee="w-b"))
    with app.app_context():
        assert ledger.get_balance(ledger.clearing_account(platform.id).id) == -30
        assert ledger.get_balance(ledger.account_for_member(bob.id).id) == 30


def test_the_sweeper_queues_what_redis_lost(app, client, linked):
    body, headers = signed(transfer_event("t1"))
    client.post("/callbacks/tr", data=body, headers=headers)
    app.extensions["redis"].flushdb()
    with app.app_context():
        assert sweep_inbox(older_than_seconds=0) == 1
        SimpleWorker([app.extensions["queue"]], connection=app.extensions["redis"]).work(burst=True)
    assert _imports(app) == 1


def test_member_erased_marks_the_link(app, client, linked):
    event = {
        "id": "evt_erase",
        "type": "member.erased",
        "created_at": "2026-11-24T10:00:00Z",
        "data": {
            "id": "m-w-a",
            "wallet_id": "w-a",
            "status": "erased",
            "created_at": "2026-11-24T10:00:00Z",
            "external_id": "x",
            "email": "a@example.org",
            "display_name": "A",
        },
    }
    _deliver(app, client, event)
    with app.app_context():
        link = db.session.scalar(select(PlatformLink).where(PlatformLink.remote_wallet_id == "w-a"))
        assert link.state == "erased"


def test_an_event_waiting_when_its_member_is_erased_loses_its_body_once_applied(
    app, client, linked
):
    from gateway.callbacks.erasure import ERASED_REASON
    from gateway.members.accounts import erase_member
    from gateway.members.models import Member

    anna, _ = linked
    annas = transfer_event("t1")  # from anna's wallet, w-a
    others = transfer_event("t2", payer="w-b", payee="w-clearing")
    for event in (annas, others):
        body, headers = signed(event)
        assert client.post("/callbacks/tr", data=body, headers=headers).status_code == 202
    with app.app_context():
        erase_member(db.session.get(Member, anna.id))
        db.session.commit()
        states = db.session.scalars(select(InboxEvent.state)).all()
        assert states == ["received", "received"]  # the erasure left them to be applied
        SimpleWorker([app.extensions["queue"]], connection=app.extensions["redis"]).work(burst=True)
        rows = {e.webhook_id: e for e in db.session.scalars(select(InboxEvent))}
    assert _imports(app) == 2  # applied first: the hours are the ledger's
    scrubbed = rows[annas["id"]]
    assert scrubbed.state == "processed"
    assert scrubbed.parked_reason == ERASED_REASON
    assert json.loads(scrubbed.body) == {
        "id": annas["id"],
        "type": "transfer.completed",
        "erased": True,
    }
    assert scrubbed.headers == {}
    kept = rows[others["id"]]
    assert kept.state == "processed"
    assert json.loads(kept.body) == others


def test_the_partners_confirmation_of_an_erasure_keeps_no_personal_data(app, client, linked):
    from gateway.members.accounts import erase_member
    from gateway.members.models import Member

    anna, _ = linked
    with app.app_context():
        erase_member(db.session.get(Member, anna.id))
        db.session.commit()
    confirmation = {
        "id": "evt_erased",
        "type": "member.erased",
        "created_at": "2026-11-24T10:00:00Z",
        "data": {
            "id": "m-w-a",
            "wallet_id": "w-a",
            "status": "erased",
            "created_at": "2026-11-24T10:00:00Z",
            "external_id": anna.id,
            "email": "anna@example.org",
            "display_name": "Anna Rossi",
        },
    }
    _deliver(app, client, confirmation)
    with app.app_context():
        link = db.session.scalar(select(PlatformLink).where(PlatformLink.remote_wallet_id == "w-a"))
        assert link.state == "erased"
        row = db.session.scalar(select(InboxEvent).where(InboxEvent.webhook_id == "evt_erased"))
        assert row.state == "processed"
        assert "Anna" not in row.body
        assert "anna@example.org" not in row.body

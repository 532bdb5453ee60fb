"""Delivering outbox rows through the drain: success, retries with backoff, dead letters,
dependencies."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from gateway.db import db, utcnow
from gateway.federation.models import PlatformLink
from gateway.sync.drain import drain
from gateway.sync.models import OutboxItem, SyncAttempt
from gateway.sync.outbox import record_effect
from tests.factories import create_member
from tests.sync.conftest import BASE, consent, consent_and_update, member_json

PROBLEM = "application/problem+json"


def _reload(item_id: str) -> OutboxItem:
    db.session.expire_all()
    return db.session.get(OutboxItem, item_id)


def _drain(item: OutboxItem) -> str:
    """Run one drain of the row's platform in this thread, as a worker runs the job."""
    return drain(item.platform_id)


def _outcomes(item_id: str) -> list[str]:
    """What each attempt at the row recorded, oldest first."""
    query = select(SyncAttempt.outcome).where(SyncAttempt.outbox_id == item_id)
    return list(db.session.scalars(query.order_by(SyncAttempt.started_at)))


def _make_due(item_id: str) -> None:
    db.session.get(OutboxItem, item_id).next_attempt_at = utcnow()
    db.session.commit()


def test_registration_links_the_member(app, platform, partner, run_jobs):
    with app.app_context():
        member, item = consent(platform)
        created = partner.post(f"{BASE}/v1/members", status=201, json=member_json(member.id))
        assert run_jobs()
        item = _reload(item.id)
        assert item.state == "succeeded"
        assert item.attempts == 1
        assert item.result == {"remote_member_id": "tr-m1", "remote_wallet_id": "tr-w1"}
        link = db.session.scalar(select(PlatformLink))
        assert (link.state, link.remote_member_id, link.remote_wallet_id) == (
            "active",
            "tr-m1",
            "tr-w1",
        )
        request = created.calls[0].request
        assert request.headers["Idempotency-Key"] == f"gw-{item.id}"
        assert request.headers["Authorization"] == "Bearer partner-token"
        attempts = db.session.scalars(select(SyncAttempt)).all()
        assert [a.outcome for a in attempts] == ["ok"]


def test_rolled_back_change_sends_nothing(app, platform, partner, run_jobs):
    with app.app_context():
        member, _ = consent(platform)
        record_effect(platform_id=platform.id, kind="update_member", member_id=member.id)
        db.session.rollback()
        assert (
            db.session.scalar(select(OutboxItem).where(OutboxItem.kind == "update_member")) is None
        )


def test_server_error_is_retried_with_backoff(app, platform, partner):
    with app.app_context():
        member, item = consent(platform)
        partner.post(f"{BASE}/v1/members", status=503, json={"title": "down"}, content_type=PROBLEM)
        _drain(item)
        item = _reload(item.id)
        assert item.state == "pending"
        assert item.attempts == 1
        assert item.next_attempt_at > utcnow() - timedelta(seconds=1)
        assert item.last_error_code == "RetryableError"
        partner.replace("POST", f"{BASE}/v1/members", status=201, json=member_json(member.id))
        _make_due(item.id)
        _drain(item)
        item = _reload(item.id)
        assert (item.state, item.attempts) == ("succeeded", 2)
        assert _outcomes(item.id) == ["retry", "ok"]


def test_retry_after_is_a_floor(app, platform, partner):
    with app.app_context():
        _, item = consent(platform)
        partner.post(
            f"{BASE}/v1/members",
            status=429,
            headers={"Retry-After": "120"},
            json={"title": "slow down"},
            content_type=PROBLEM,
        )
        before = utcnow()
        _drain(item)
        item = _reload(item.id)
        assert (item.state, item.attempts, _outcomes(item.id)) == ("pending", 0, ["throttled"])
        assert item.next_attempt_at >= before + timedelta(seconds=119)


def test_throttling_spends_no_attempt(app, platform, partner):
    """More 429s than attempts allowed: the row waits them out and is delivered, not killed."""
    app.config["SYNC_MAX_ATTEMPTS"] = 2
    with app.app_context():
        member, item = consent(platform)
        partner.post(f"{BASE}/v1/members", status=429, json={}, content_type=PROBLEM)
        for _ in range(3):
            _drain(item)
            assert (_reload(item.id).state, _reload(item.id).attempts) == ("pending", 0)
            _make_due(item.id)
        partner.replace("POST", f"{BASE}/v1/members", status=503, json={}, content_type=PROBLEM)
        _drain(item)
        _make_due(item.id)
        partner.replace("POST", f"{BASE}/v1/members", status=201, json=member_json(member.id))
        _drain(item)
        item = _reload(item.id)
        assert (item.state, item.attempts) == ("succeeded", 2)
        assert _outcomes(item.id) == ["throttled"] * 3 + ["retry", "ok"]


def test_permanent_error_is_dead_at_once(app, platform, partner):
    with app.app_context():
        _, item = consent(platform)
        partner.post(
            f"{BASE}/v1/members",
            status=422,
            json={
                "type": "about:blank",
                "title": "Invalid",
                "status": 422,
                "code": "validation_error",
            },
            content_type=PROBLEM,
        )
        _drain(item)
        item = _reload(item.id)
        assert item.state == "dead"
        assert item.completed_at is not None
        assert item.last_error_code == "validation_error"


def test_gives_up_after_the_last_attempt(app, platform, partner):
    app.config["SYNC_MAX_ATTEMPTS"] = 2
    with app.app_context():
        _, item = consent(platform)
        partner.post(f"{BASE}/v1/members", status=500, json={}, content_type=PROBLEM)
        _drain(item)
        assert _reload(item.id).state == "pending"
        _make_due(item.id)
        _drain(item)
        item = _reload(item.id)
        assert (item.state, item.last_error_code) == ("dead", "retries_exhausted")
        assert item.attempts == 2


def test_network_failure_is_retryable(app, platform, partner):
    import requests

    with app.app_context():
        _, item = consent(platform)
        partner.post(f"{BASE}/v1/members", body=requests.ConnectionError("reset by peer"))
        _drain(item)
        item = _reload(item.id)
        assert (item.state, item.attempts, item.last_error_code) == ("pending", 1, "RetryableError")


def test_conflict_on_registration_waits_for_the_member_to_link(app, platform, partner):
    with app.app_context():
        _, item = consent(platform, email="taken@example.org")
        partner.post(
            f"{BASE}/v1/members",
            status=409,
            json={"title": "exists", "status": 409, "code": "member_exists"},
            content_type=PROBLEM,
        )
        partner.get(f"{BASE}/v1/members", json={"data": [], "next_cursor": None})
        _drain(item)
        assert _outcomes(item.id) == ["conflict"]
        assert _reload(item.id).result == {"conflict": "member_exists", "needs": "oauth_link"}
        link = db.session.scalar(select(PlatformLink))
        assert link.state == "failed"
        assert link.remote_member_id is None


def test_a_claimed_row_runs_once(app, platform, partner):
    with app.app_context():
        member, item = consent(platform)
        created = partner.post(f"{BASE}/v1/members", status=201, json=member_json(member.id))
        assert _drain(item) == "1 row(s) settled"
        assert _drain(item) == "0 row(s) settled"  # delivered: no drain claims it again
        assert len(created.calls) == 1
        assert _reload(item.id).attempts == 1


def test_dependent_row_waits_for_its_dependency(app, platform, partner):
    with app.app_context():
        member, registration, update = consent_and_update(platform)
        partner.post(f"{BASE}/v1/members", status=503, json={}, content_type=PROBLEM)
        patched = partner.patch(f"{BASE}/v1/members/tr-m1", json=member_json(member.id))
        _drain(registration)
        # The registration failed for now: its update waits, spending no attempt.
        assert (_reload(registration.id).state, _reload(registration.id).attempts) == ("pending", 1)
        assert (_reload(update.id).state, _reload(update.id).attempts) == ("pending", 0)
        assert not patched.calls
        partner.replace("POST", f"{BASE}/v1/members", status=201, json=member_json(member.id))
        _make_due(registration.id)
        _make_due(update.id)
        _drain(registration)
        assert _reload(registration.id).state == "succeeded"
        assert (_reload(update.id).state, _reload(update.id).attempts) == ("succeeded", 1)
        assert len(patched.calls) == 1


def test_dependent_of_a_dead_row_dies(app, platform, partner):
    with app.app_context():
        _member, registration, update = consent_and_update(platform)
        registration.state = "dead"
        db.session.commit()
        _drain(update)
        update = _reload(update.id)
        assert (update.state, update.last_error_code) == ("dead", "dependency_failed")


@pytest.mark.parametrize("enabled", [False])
def test_disabled_platform_holds_its_rows(app, platform, partner, enabled):
    with app.app_context():
        _, item = consent(platform)
        db.session.merge(platform).enabled = enabled
        db.session.commit()
        assert _drain(item) == "platform disabled"
        item = _reload(item.id)
        assert (item.state, item.attempts) == ("pending", 0)
        assert not partner.calls


def _transfer_json(transfer_id: str, body: dict, status: str = "completed", reversal_of=None):
    return {
        **body,
        "id": transfer_id,
        "status": status,
        "reversal_of": reversal_of,
        "created_at": "2026-11-24T10:00:00Z",
    }


def test_a_transfer_and_its_reversal_are_pushed_with_our_reference(app, platform, partner):
    import json

    from gateway.ledger import services as ledger

    with app.app_context():
        alice, alice_reg = consent(platform)
        bob, bob_reg = consent(platform)
        numbers = {alice.id: 1, bob.id: 2}

        def registered(request):
            member_id = json.loads(request.body)["external_id"]
            return 201, {}, json.dumps(member_json(member_id, numbers[member_id]))

        partner.add_callback("POST", f"{BASE}/v1/members", callback=registered)
        _drain(alice_reg)
        assert {_reload(alice_reg.id).state, _reload(bob_reg.id).state} == {"succeeded"}
        txn = ledger.post_transfer(
            payer_account_id=ledger.account_for_member(alice.id).id,
            payee_account_id=ledger.account_for_member(bob.id).id,
            minutes=90,
            description="babysitting",
            kind="help",
        )
        db.session.commit()
        push = db.session.scalar(select(OutboxItem).where(OutboxItem.kind == "push_transfer"))

        def created(request):
            body = json.loads(request.body)
            return 201, {}, json.dumps(_transfer_json("tr-t1", body))

        call = partner.add_callback("POST", f"{BASE}/v1/transfers", callback=created)
        _drain(push)
        assert _reload(push.id).state == "succeeded"
        sent = json.loads(call.calls[0].request.body)
        assert sent["payer_wallet_id"] == "tr-w1"
        assert sent["payee_wallet_id"] == "tr-w2"
        assert sent["minutes"] == 90
        assert sent["external_reference"] == f"gw-txn-{txn.id}"
        assert call.calls[0].request.headers["Idempotency-Key"] == f"gw-{push.id}"
        assert _reload(push.id).result == {"remote_transfer_id": "tr-t1"}

        ledger.reverse_transaction(txn.id, reason="entered by mistake")
        db.session.commit()
        reverse = db.session.scalar(select(OutboxItem).where(OutboxItem.kind == "reverse_transfer"))
        assert reverse.depends_on_id == push.id
        reversed_call = partner.post(
            f"{BASE}/v1/transfers/tr-t1/reversal",
            status=201,
            json=_transfer_json(
                "tr-t2",
                {**sent, "payer_wallet_id": "tr-w2", "payee_wallet_id": "tr-w1"},
                reversal_of="tr-t1",
            ),
        )
        _drain(reverse)
        assert _reload(reverse.id).state == "succeeded"
        assert len(reversed_call.calls) == 1
        assert _reload(reverse.id).result == {"remote_transfer_id": "tr-t2", "reversal_of": "tr-t1"}


def test_a_member_without_a_wallet_there_goes_to_the_clearing_wallet(app, platform, partner):
    import json

    from gateway.ledger import services as ledger

    with app.app_context():
        platform = db.session.merge(platform)
        platform.options = {"clearing_wallet_id": "tr-clearing"}
        db.session.commit()
        alice, reg = consent(platform)
        partner.post(f"{BASE}/v1/members", status=201, json=member_json(alice.id, 1))
        _drain(reg)
        assert _reload(reg.id).state == "succeeded"
        outsider = create_member()
        ledger.post_transfer(
            payer_account_id=ledger.account_for_member(outsider.id).id,
            payee_account_id=ledger.account_for_member(alice.id).id,
            minutes=30,
            description="shopping",
            kind="help",
        )
        db.session.commit()
        push = db.session.scalar(select(OutboxItem).where(OutboxItem.kind == "push_transfer"))
        call = partner.add_callback(
            "POST",
            f"{BASE}/v1/transfers",
            callback=lambda r: (201, {}, json.dumps(_transfer_json("tr-t9", json.loads(r.body)))),
        )
        _drain(push)
        assert _reload(push.id).state == "succeeded"
        sent = json.loads(call.calls[0].request.body)
        assert (sent["payer_wallet_id"], sent["payee_wallet_id"]) == ("tr-clearing", "tr-w1")

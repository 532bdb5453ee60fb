"""Comparing staged remote balances with the ledger, and explaining each difference."""

from __future__ import annotations

from sqlalchemy import select, update

from gateway.db import db
from gateway.federation.models import Platform, PlatformLink
from gateway.ledger import services as ledger
from gateway.sync.balances import record_differences
from gateway.sync.models import (
    OutboxItem,
    ReconciliationDifference,
    ReconciliationRun,
    RemoteBalance,
)
from tests.factories import create_member


def _setup():
    platform = Platform(name="tr", connector="timerepublik", base_url="https://tr.test/api")
    db.session.add(platform)
    db.session.flush()
    alice, bob = create_member(), create_member()
    for member, wallet in ((alice, "w-alice"), (bob, "w-bob")):
        db.session.add(
            PlatformLink(
                member_id=member.id,
                platform_id=platform.id,
                state="active",
                remote_member_id=f"m-{wallet}",
                remote_wallet_id=wallet,
            )
        )
    db.session.commit()
    return platform, alice, bob


def _pay(payer, payee, minutes):
    txn = ledger.post_transfer(
        payer_account_id=ledger.account_for_member(payer.id).id,
        payee_account_id=ledger.account_for_member(payee.id).id,
        minutes=minutes,
        description="help",
        kind="help",
    )
    db.session.commit()
    return txn


def _settle(txn, state="succeeded"):
    db.session.execute(
        update(OutboxItem).where(OutboxItem.transaction_id == txn.id).values(state=state)
    )
    db.session.commit()


def _run(platform, remote: dict[str, int]):
    run = ReconciliationRun(platform_id=platform.id)
    db.session.add(run)
    db.session.flush()
    for wallet, minutes in remote.items():
        db.session.add(RemoteBalance(run_id=run.id, remote_wallet_id=wallet, minutes=minutes))
    db.session.commit()
    count = record_differences(run.id, platform.id)
    db.session.commit()
    rows = db.session.scalars(
        select(ReconciliationDifference).where(ReconciliationDifference.run_id == run.id)
    ).all()
    assert count == len(rows)
    return {row.remote_wallet_id: row for row in rows}


def test_agreeing_balances_record_nothing(app):
    with app.app_context():
        platform, alice, bob = _setup()
        _settle(_pay(alice, bob, 60))
        assert _run(platform, {"w-alice": -60, "w-bob": 60}) == {}


def test_a_pending_push_explains_the_difference(app):
    with app.app_context():
        platform, alice, bob = _setup()
        _settle(_pay(alice, bob, 60))
        _pay(alice, bob, 30)  # its push row is still pending
        diffs = _run(platform, {"w-alice": -60, "w-bob": 60})
        assert diffs["w-alice"].explanation == "outbound_pending"
        assert diffs["w-alice"].difference_minutes == 30
        assert diffs["w-alice"].pending_outbound_minutes == -30
        assert diffs["w-bob"].difference_minutes == -30


def test_a_remote_change_we_cannot_account_for_is_unexplained(app):
    with app.app_context():
        platform, alice, bob = _setup()
        _settle(_pay(alice, bob, 60))
        diffs = _run(platform, {"w-alice": -75, "w-bob": 60})
        assert set(diffs) == {"w-alice"}
        assert diffs["w-alice"].explanation == "unexplained"
        assert diffs["w-alice"].difference_minutes == -15
        assert diffs["w-alice"].expected_remote_minutes == -60


def test_hours_from_before_the_link_are_not_mirrored(app):
    with app.app_context():
        platform, alice, bob = _setup()
        txn = _pay(alice, bob, 45)
        _settle(txn, state="dead")  # never reached the platform
        diffs = _run(platform, {"w-alice": 0, "w-bob": 0})
        assert diffs["w-alice"].explanation == "not_mirrored"
        assert diffs["w-alice"].local_minutes == -45


def test_imports_from_the_platform_count_as_mirrored(app):
    with app.app_context():
        platform, alice, bob = _setup()
        ledger.post_transfer(
            payer_account_id=ledger.account_for_member(alice.id).id,
            payee_account_id=ledger.account_for_member(bob.id).id,
            minutes=20,
            description="imported",
            kind="import",
            source="callback",
            external=(platform.id, "remote-1"),
        )
        db.session.commit()
        assert _run(platform, {"w-alice": -20, "w-bob": 20}) == {}
        assert db.session.scalar(select(OutboxItem)) is None

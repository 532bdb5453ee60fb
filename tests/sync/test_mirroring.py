"""Ledger postings become outbox rows in the same transaction, for every linked platform."""

from __future__ import annotations

from sqlalchemy import select

from gateway.db import db
from gateway.federation.models import Platform, PlatformLink
from gateway.ledger import services as ledger
from gateway.sync.models import OutboxItem
from tests.factories import create_member


def _platform(name: str) -> Platform:
    row = Platform(name=name, connector="timerepublik", base_url=f"https://{name}.test/api")
    db.session.add(row)
    db.session.flush()
    return row


def _link(member, platform, state="active", wallet=None):
    db.session.add(
        PlatformLink(
            member_id=member.id,
            platform_id=platform.id,
            state=state,
            remote_member_id=f"rm-{member.id[:8]}" if state == "active" else None,
            remote_wallet_id=wallet or (f"rw-{member.id[:8]}" if state == "active" else None),
        )
    )
    db.session.flush()


def _transfer(payer, payee, minutes=120, **kwargs):
    return ledger.post_transfer(
        payer_account_id=ledger.account_for_member(payer.id).id,
        payee_account_id=ledger.account_for_member(payee.id).id,
        minutes=minutes,
        description="help with shopping",
        kind="help",
        **kwargs,
    )


def _rows(kind="push_transfer"):
    return db.session.scalars(select(OutboxItem).where(OutboxItem.kind == kind)).all()


def test_a_transfer_between_linked_members_is_pushed_once_per_platform(app):
    with app.app_context():
        one, two = _platform("one"), _platform("two")
        alice, bob = create_member(), create_member()
        _link(alice, one)
        _link(bob, one)
        _link(alice, two)
        txn = _transfer(alice, bob)
        db.session.commit()
        rows = _rows()
        assert sorted(r.platform_id for r in rows) == sorted([one.id, two.id])
        assert {r.transaction_id for r in rows} == {txn.id}
        assert rows[0].payload["minutes"] == 120
        assert rows[0].payload["payer_member_id"] == alice.id


def test_unlinked_members_push_nothing(app):
    with app.app_context():
        _platform("one")
        _transfer(create_member(), create_member())
        db.session.commit()
        assert _rows() == []


def test_a_rolled_back_posting_leaves_no_row(app):
    with app.app_context():
        one = _platform("one")
        alice, bob = create_member(), create_member()
        _link(alice, one)
        db.session.commit()
        _transfer(alice, bob)
        db.session.rollback()
        assert _rows() == []


def test_an_import_is_not_sent_back_to_its_platform(app):
    with app.app_context():
        one, two = _platform("one"), _platform("two")
        alice, bob = create_member(), create_member()
        _link(alice, one)
        _link(alice, two)
        _transfer(alice, bob, source="callback", external=(one.id, "remote-1"))
        db.session.commit()
        assert [r.platform_id for r in _rows()] == [two.id]


def test_a_pending_registration_goes_first(app):
    with app.app_context():
        one = _platform("one")
        alice, bob = create_member(), create_member()
        _link(alice, one, state="pending")
        from gateway.sync.outbox import record_effect

        registration = record_effect(platform_id=one.id, kind="register_member", member_id=alice.id)
        _transfer(alice, bob)
        db.session.commit()
        (push,) = _rows()
        assert push.depends_on_id == registration.id


def test_a_push_waits_only_for_a_registration_whose_link_is_pending(app):
    from gateway.sync.outbox import record_effect

    with app.app_context():
        one = _platform("one")
        alice, bob = create_member(), create_member()
        _link(alice, one)  # active: her wallet there is known
        _link(bob, one, state="pending")
        record_effect(platform_id=one.id, kind="register_member", member_id=alice.id)
        bobs = record_effect(platform_id=one.id, kind="register_member", member_id=bob.id)
        _transfer(alice, bob)
        db.session.commit()
        (push,) = _rows()
        assert push.depends_on_id == bobs.id


def test_a_reversal_follows_the_pushes_and_reaches_the_origin(app):
    with app.app_context():
        one, two = _platform("one"), _platform("two")
        alice, bob = create_member(), create_member()
        _link(alice, one)
        _link(alice, two)
        imported = _transfer(alice, bob, source="callback", external=(one.id, "remote-9"))
        db.session.commit()
        (push_two,) = _rows()
        ledger.reverse_transaction(imported.id, reason="entered twice")
        db.session.commit()
        reversals = {r.platform_id: r for r in _rows("reverse_transfer")}
        assert set(reversals) == {one.id, two.id}
        assert reversals[two.id].depends_on_id == push_two.id
        assert reversals[one.id].payload["remote_transfer_id"] == "remote-9"


def test_a_reversal_from_the_origin_is_not_sent_back(app):
    with app.app_context():
        one = _platform("one")
        alice, bob = create_member(), create_member()
        _link(alice, one)
        imported = _transfer(alice, bob, source="callback", external=(one.id, "remote-3"))
        db.session.commit()
        ledger.reverse_transaction(
            imported.id, reason="reversed there", source="callback", external=(one.id, "remote-4")
        )
        db.session.commit()
        assert _rows("reverse_transfer") == []

"""Events are written with the change they describe: one row per event and subscription."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

from gateway.db import db, utcnow
from gateway.federation import consent
from gateway.federation.models import Platform, PlatformLink
from gateway.ledger import services as ledger
from gateway.members import accounts
from gateway.sync.handlers import Links, prepare
from gateway.sync.models import OutboxItem
from gateway.webhooks.subscriptions import disable_subscription, get_subscription
from schemas.vocabulary import WEBHOOK_EVENT_TYPES
from tests.factories import create_member
from tests.webhooks.conftest import event_rows, event_types, subscribe

PASSWORD = "a long enough passphrase 42"


def _timebank() -> Platform:
    platform = Platform(name="tb", connector="timerepublik", base_url="https://tb.example/api")
    platform.credentials = {"client_id": "x", "client_secret": "y"}
    db.session.add(platform)
    db.session.commit()
    return platform


def _every_kind_of_change() -> dict[str, str]:
    """One change of each kind an event reports; returns the member ids involved."""
    anna = accounts.create_member("anna@example.org", "Anna", PASSWORD)
    db.session.commit()
    accounts.mark_verified(anna)
    db.session.commit()
    bruno = create_member()
    timebank = _timebank()
    link = PlatformLink(member_id=anna.id, platform_id=timebank.id, state="active")
    link.remote_member_id, link.remote_wallet_id = "r-1", "w-1"
    db.session.add(link)
    db.session.commit()
    anna_account = ledger.account_for_member(anna.id).id
    bruno_account = ledger.account_for_member(bruno.id).id
    posted = ledger.post_transfer(
        payer_account_id=anna_account, payee_account_id=bruno_account, minutes=30, description="x"
    )
    db.session.commit()
    ledger.post_transfer(
        payer_account_id=ledger.clearing_account(timebank.id).id,
        payee_account_id=anna_account,
        minutes=15,
        description="from the timebank",
        source="callback",
        external=(timebank.id, "remote-7"),
    )
    db.session.commit()
    ledger.reverse_transaction(posted.id, reason="mistake")
    db.session.commit()
    consent.withdraw(anna, timebank)
    db.session.commit()
    accounts.erase_member(bruno)
    db.session.commit()
    return {"anna": anna.id, "bruno": bruno.id, "timebank": timebank.id}


def test_every_change_writes_its_events_once(app, subscribed):
    with app.app_context():
        ids = _every_kind_of_change()
        types = Counter(event_types(subscribed.platform_id))
    assert types == {
        "member.created": 1,
        "member.verified": 1,
        "member.deleted": 1,
        "platform.unlinked": 1,
        "transaction.posted": 1,
        "transaction.imported": 1,
        "transaction.reversed": 1,
        # anna and bruno for the posting and its reversal, anna for the import
        "balance.changed": 5,
    }
    assert ids


def test_platform_linked_is_written_when_the_registration_is_delivered(app, subscribed):
    with app.app_context():
        timebank = _timebank()
        member = create_member(email_verified_at=utcnow())
        consent.grant(member, timebank)
        db.session.commit()
        registration = db.session.query(OutboxItem).filter_by(platform_id=timebank.id).one()
        link = db.session.query(PlatformLink).filter_by(member_id=member.id).one()
        link.state, link.remote_member_id = "active", "r-9"
        link.remote_wallet_id = "w-9"
        # Already registered: the handler's shortcut applies without a call and writes nothing.
        call = prepare(registration, timebank, Links(timebank))
        assert call.send is None
        link.state, link.remote_member_id = "pending", None

        class Remote:
            id, wallet_id = "r-9", "w-9"

        call = prepare(registration, timebank, Links(timebank))
        call.apply(Remote())
        db.session.commit()
        rows = event_rows(subscribed.platform_id)
        member_id, timebank_id = member.id, timebank.id
    assert [r.payload["type"] for r in rows] == ["platform.linked"]
    data = rows[0].payload["data"]
    assert data == {
        "member_id": member_id,
        "platform": {"id": timebank_id, "name": "tb", "display_name": ""},
        "linked_via": "registration",
    }


def test_only_subscribed_types_and_enabled_subscriptions_get_events(app):
    with app.app_context():
        members_only = subscribe(events=("member.created", "member.deleted"))
        everything = subscribe("https://other.example/hook")
        disabled = subscribe("https://gone.example/hook")
        disable_subscription("test", get_subscription(disabled.id))
        db.session.commit()
        _every_kind_of_change()
        assert Counter(event_types(members_only.platform_id)) == {
            "member.created": 1,
            "member.deleted": 1,
        }
        assert set(event_types(everything.platform_id)) == set(WEBHOOK_EVENT_TYPES) - {
            "platform.linked"
        }
        assert event_rows(disabled.platform_id) == []


def test_a_rolled_back_change_writes_no_event(app, subscribed):
    with app.app_context():
        accounts.create_member("rolled@example.org", "Rolled", PASSWORD)
        db.session.rollback()
        assert event_rows(subscribed.platform_id) == []


def test_payloads_carry_what_the_website_needs(app, subscribed):
    with app.app_context():
        ids = _every_kind_of_change()
        rows = event_rows(subscribed.platform_id)
        anna_account = ledger.account_for_member(ids["anna"]).id
    by_type: dict[str, list[dict]] = {}
    for row in rows:
        event = row.payload
        assert event["id"].startswith("evt_")
        assert set(event) == {"id", "type", "timestamp", "data"}
        by_type.setdefault(event["type"], []).append(event["data"])
    posted = by_type["transaction.posted"][0]
    assert posted["minutes"] == 30
    assert posted["kind"] == "transfer"
    assert posted["payer_member_id"] == ids["anna"]
    assert posted["payee_member_id"] == ids["bruno"]
    assert posted["reference"] == f"gw-txn-{posted['id']}"
    assert posted["platform"] is None
    imported = by_type["transaction.imported"][0]
    assert imported["platform"] == "tb"
    assert imported["reference"] == "remote-7"
    assert imported["payee_member_id"] == ids["anna"]
    reversed_ = by_type["transaction.reversed"][0]
    assert reversed_["reversal_of"] == posted["id"]
    anna_balances = [b for b in by_type["balance.changed"] if b["member_id"] == ids["anna"]]
    assert [b["balance_minutes"] for b in anna_balances] == [-30, -15, 15]
    assert all(b["account_id"] == anna_account for b in anna_balances)
    assert by_type["member.deleted"] == [{"member_id": ids["bruno"]}]
    assert by_type["member.created"][0]["email"] == "anna@example.org"


def test_a_members_events_are_chained_in_order(app, subscribed):
    with app.app_context():
        ids = _every_kind_of_change()
        rows = [r for r in event_rows(subscribed.platform_id) if r.member_id == ids["anna"]]
    assert rows[0].depends_on_id is None
    for previous, row in pairwise(rows):
        assert row.depends_on_id == previous.id


def test_erasing_a_member_takes_their_personal_data_out_of_the_outbox(app, subscribed):
    with app.app_context():
        member = accounts.create_member("gone@example.org", "Gone Soon", PASSWORD, municipio=4)
        db.session.commit()
        accounts.mark_verified(member)
        db.session.commit()
        accounts.erase_member(member)
        db.session.commit()
        rows = event_rows(subscribed.platform_id)
    assert [r.payload["type"] for r in rows] == [
        "member.created",
        "member.verified",
        "member.deleted",
    ]
    text = str([r.payload for r in rows])
    assert "gone@example.org" not in text
    assert "Gone Soon" not in text
    assert rows[0].payload["data"]["email"] is None
    assert rows[0].payload["data"]["municipio"] is None
    assert rows[2].payload["data"] == {"member_id": rows[0].member_id}


def test_disabling_skips_the_events_not_sent_yet(app, subscribed):
    with app.app_context():
        accounts.create_member("late@example.org", "Late", PASSWORD)
        db.session.commit()
        assert disable_subscription("test", get_subscription(subscribed.id)) == 1
        db.session.commit()
        accounts.create_member("later@example.org", "Later", PASSWORD)
        db.session.commit()
        (row,) = event_rows(subscribed.platform_id)
    assert (row.state, row.last_error_code) == ("skipped", "subscription_disabled")
    assert row.completed_at is not None

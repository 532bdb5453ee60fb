"""Transfers naming a member whose link is not active yet apply once it is, without an operator:
callback events parked "unmapped" wake when the link turns active, and reconciliation keeps what
it could not apply for its next run."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from connectors.interface import MemberData, TransferData
from gateway.callbacks.models import InboxEvent
from gateway.db import db
from gateway.federation.models import PlatformLink
from gateway.federation.platforms import add_platform
from gateway.ledger import services as ledger
from gateway.members.models import Member
from gateway.sync import reconcile
from gateway.sync.outbox import record_effect
from gateway.sync.reconcile import reconcile_platform
from tests.callbacks.conftest import SECRET, signed, transfer_event
from tests.factories import create_member
from tests.sync.conftest import BASE, member_json
from tests.sync.sandbox_partner import add_sandbox_platform, drain_all, linked_members


def _pending_member(platform_id: str) -> Member:
    """A member who consented: a pending link and its registration row (committed)."""
    member = create_member()
    db.session.add(PlatformLink(member_id=member.id, platform_id=platform_id))
    record_effect(platform_id=platform_id, kind="register_member", member_id=member.id)
    db.session.commit()
    return member


def test_an_event_for_a_pending_link_applies_once_the_link_is_active(
    app, client, partner, run_jobs
):
    with app.app_context():
        platform = add_platform(
            "tr",
            "timerepublik",
            BASE,
            credentials={"client_id": "gw", "client_secret": "s"},
            webhook_secrets=[SECRET],
        )
        db.session.commit()
        alice = create_member()
        db.session.add(
            PlatformLink(
                member_id=alice.id,
                platform_id=platform.id,
                state="active",
                remote_member_id="m-a",
                remote_wallet_id="w-a",
            )
        )
        db.session.commit()
        partner.post(f"{BASE}/v1/members", status=503, json={})  # the registration waits
        bob = _pending_member(platform.id)
        run_jobs()
        # The platform knows Bob's wallet already: a transfer to it is called back to us.
        body, headers = signed(transfer_event("t-1", payer="w-a", payee="tr-w1", minutes=35))
        assert client.post("/callbacks/tr", data=body, headers=headers).status_code in (200, 202)
        run_jobs()
        event = db.session.scalar(select(InboxEvent))
        event_id = event.id
        assert (event.state, event.parked_reason) == (
            "parked",
            "a wallet of this transfer belongs to no linked member",
        )
        # Bob's registration goes through: his link is active with wallet tr-w1.
        partner.replace("POST", f"{BASE}/v1/members", status=201, json=member_json(bob.id, 1))
        drain_all(platform.id)
        run_jobs()  # the woken event, handed over when the registration committed
        db.session.rollback()
        assert db.session.get(InboxEvent, event_id).state == "processed"
        assert ledger.account_for_member(bob.id).balance_minutes == 35
        assert ledger.account_for_member(alice.id).balance_minutes == -35


@pytest.fixture
def on_sandbox(app, sandbox_partner):
    with app.app_context():
        platform = add_sandbox_platform(sandbox_partner)
        (alice, alice_wallet), (carol, carol_wallet) = linked_members(platform, 2)
        yield platform, sandbox_partner, (alice, alice_wallet), (carol, carol_wallet)


def test_reconciliation_keeps_what_it_could_not_apply_for_its_next_run(on_sandbox, monkeypatch):
    platform, partner, (alice, alice_wallet), (carol, carol_wallet) = on_sandbox
    monkeypatch.setattr(reconcile, "PAGE_SIZE", 1)  # every transfer on a page of its own
    bob = _pending_member(platform.id)
    # Bob's registration reached the platform, its answer did not: his link is still pending
    # here while the platform has his wallet, and transfers go to it.
    remote = partner.reader.register_member(
        MemberData(external_id=bob.id, email=bob.email, display_name=bob.display_name), "lost"
    )
    for n, (payer, payee, minutes) in enumerate(
        [(alice_wallet, remote.wallet_id, 40), (alice_wallet, carol_wallet, 15)]
    ):
        partner.reader.create_transfer(
            TransferData(
                payer_wallet_id=payer,
                payee_wallet_id=payee,
                minutes=minutes,
                description="native",
                external_reference=f"native-{n}",
            ),
            f"native-key-{n}",
        )
    first = reconcile_platform(platform.id)
    assert (first.state, first.imported, first.transfers_unapplied) == ("partial", 1, 1)
    # The registration is retried and finds the account the platform made: the link is active.
    drain_all(platform.id)
    second = reconcile_platform(platform.id)
    assert (second.state, second.imported, second.transfers_unapplied) == ("succeeded", 1, 0)
    db.session.rollback()
    for member, wallet in (
        (alice, alice_wallet),
        (carol, carol_wallet),
        (bob.id, remote.wallet_id),
    ):
        assert ledger.account_for_member(member).balance_minutes == partner.balance(wallet)
    assert partner.balance(remote.wallet_id) == 40


def test_a_run_that_could_not_read_some_balances_is_partial(on_sandbox):
    platform, _partner, _alice, _carol = on_sandbox
    stranger = create_member()
    db.session.add(
        PlatformLink(
            member_id=stranger.id,
            platform_id=platform.id,
            state="active",
            remote_member_id="m-gone",
            remote_wallet_id="w-gone",  # the platform has no such wallet: 404
        )
    )
    db.session.commit()
    run = reconcile_platform(platform.id)
    assert (run.state, run.wallets_checked, run.wallets_unreadable) == ("partial", 2, 1)

"""Whatever happens to a push, its reversal follows it: the partner's net equals the ledger's.

Driven through the real outbox drain against the sandbox timebank (real HTTP, Idempotency-Key
replay, reversals and balances as the partner contract says).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.admin.actions import retry_item, skip_item
from gateway.db import db
from gateway.ledger import services as ledger
from gateway.sync.jobs import sweep
from gateway.sync.models import OutboxItem, ReconciliationDifference
from gateway.sync.reconcile import reconcile_platform
from tests.sync.sandbox_partner import (
    add_sandbox_platform,
    drain_all,
    drain_once,
    linked_members,
)


@pytest.fixture
def setup(app, sandbox_partner):
    """Two members linked on the sandbox; few attempts, so that rows die quickly."""
    app.config.update(SYNC_MAX_ATTEMPTS=2, SYNC_CIRCUIT_THRESHOLD=1000)
    with app.app_context():
        platform = add_sandbox_platform(sandbox_partner)
        (alice, alice_wallet), (bob, bob_wallet) = linked_members(platform, 2)
        yield platform, sandbox_partner, (alice, alice_wallet), (bob, bob_wallet)


def _pay(payer: str, payee: str, minutes: int) -> str:
    txn = ledger.post_transfer(
        payer_account_id=ledger.account_for_member(payer).id,
        payee_account_id=ledger.account_for_member(payee).id,
        minutes=minutes,
        description="help with shopping",
        kind="help",
    )
    db.session.commit()
    return txn.id


def _reverse(transaction_id: str) -> str:
    reversal = ledger.reverse_transaction(transaction_id, reason="entered by mistake")
    db.session.commit()
    return reversal.id


def _row(kind: str, transaction_id: str) -> OutboxItem:
    db.session.rollback()
    return db.session.scalar(
        select(OutboxItem).where(
            OutboxItem.kind == kind, OutboxItem.transaction_id == transaction_id
        )
    )


def _kill_push(platform, partner, transaction_id: str) -> OutboxItem:
    """The partner fails until the transfer's push is a dead letter."""
    partner.faults(error_rate=1.0)
    for _ in range(4):
        drain_once(platform.id)
    partner.clear()
    push = _row("push_transfer", transaction_id)
    assert (push.state, push.last_error_code) == ("dead", "retries_exhausted")
    return push


def _nets(partner, *members) -> list[tuple[int, int]]:
    """(partner's balance, ledger's balance) of each (member, wallet)."""
    db.session.rollback()
    return [
        (partner.balance(wallet), ledger.account_for_member(member).balance_minutes)
        for member, wallet in members
    ]


def test_a_reversal_of_a_dead_push_follows_it_when_reconciliation_revives_it(setup):
    platform, partner, alice, bob = setup
    txn = _pay(alice[0], bob[0], 60)
    _kill_push(platform, partner, txn)
    reversal = _reverse(txn)
    drain_all(platform.id)
    run = reconcile_platform(platform.id)  # revives the push: it died of transient failures
    assert run.resent >= 1
    drain_all(platform.id)
    # Before reversals followed their push: the partner had the transfer alone, [(-60, 0), ...].
    assert _nets(partner, alice, bob) == [(0, 0), (0, 0)]
    assert _row("push_transfer", txn).state == "succeeded"
    assert _row("reverse_transfer", reversal).state == "succeeded"


def test_a_reversal_of_a_dead_push_follows_it_when_an_operator_retries_it(setup):
    platform, partner, alice, bob = setup
    txn = _pay(alice[0], bob[0], 45)
    push = _kill_push(platform, partner, txn)
    reversal = _reverse(txn)
    drain_all(platform.id)
    assert _row("reverse_transfer", reversal).last_error_code == "dependency_failed"
    retry_item("operator@example.org", push.id)
    drain_all(platform.id)
    assert _row("reverse_transfer", reversal).state == "succeeded"
    assert _nets(partner, alice, bob) == [(0, 0), (0, 0)]


def test_a_reversal_posted_while_its_push_waits_goes_after_it(setup):
    platform, partner, alice, bob = setup
    txn = _pay(alice[0], bob[0], 30)
    partner.faults(error_rate=1.0)
    drain_once(platform.id)  # the push fails once and waits for its next attempt
    partner.clear()
    reversal = _reverse(txn)
    assert _row("reverse_transfer", reversal).depends_on_id == _row("push_transfer", txn).id
    drain_all(platform.id)
    assert _nets(partner, alice, bob) == [(0, 0), (0, 0)]


def test_a_reversal_of_a_skipped_push_is_skipped_and_comes_back_with_it(setup):
    platform, partner, alice, bob = setup
    txn = _pay(alice[0], bob[0], 20)
    push = _kill_push(platform, partner, txn)
    skip_item("operator@example.org", push.id, "sent by hand")
    reversal = _reverse(txn)
    row = _row("reverse_transfer", reversal)
    # Nothing to send: the partner has neither the transfer nor its reversal.
    assert (row.state, row.last_error_code, row.attempts) == ("skipped", "dependency_skipped", 0)
    assert _nets(partner, alice, bob) == [(0, 0), (0, 0)]
    # The operator changes their mind: the transfer goes, and its reversal with it.
    retry_item("operator@example.org", push.id)
    drain_all(platform.id)
    assert _row("reverse_transfer", reversal).state == "succeeded"
    assert _nets(partner, alice, bob) == [(0, 0), (0, 0)]


def test_skipping_a_push_skips_the_reversal_that_waited_for_it(setup):
    platform, partner, alice, bob = setup
    txn = _pay(alice[0], bob[0], 25)
    partner.faults(error_rate=1.0)
    drain_once(platform.id)
    partner.clear()
    reversal = _reverse(txn)
    skip_item("operator@example.org", _row("push_transfer", txn).id, "not wanted there")
    drain_all(platform.id)
    row = _row("reverse_transfer", reversal)
    assert (row.state, row.last_error_code) == ("skipped", "dependency_skipped")
    assert _nets(partner, alice, bob) == [(0, 0), (0, 0)]


def test_a_reversal_missing_where_its_transfer_arrived_is_unexplained(setup):
    """The measured case as reconciliation sees it: the transfer delivered, its reversal not."""
    platform, _partner, alice, bob = setup
    txn = _pay(alice[0], bob[0], 10)
    drain_all(platform.id)
    reversal = _reverse(txn)
    row = _row("reverse_transfer", reversal)
    db.session.delete(row)  # lost, as it was before reversals followed their push
    db.session.commit()
    run = reconcile_platform(platform.id)
    explanations = db.session.scalars(
        select(ReconciliationDifference.explanation).where(
            ReconciliationDifference.run_id == run.id
        )
    ).all()
    assert explanations == ["unexplained", "unexplained"]


def test_a_reversal_dead_with_its_push_is_skipped_when_the_push_is(setup):
    platform, partner, alice, bob = setup
    txn = _pay(alice[0], bob[0], 15)
    push = _kill_push(platform, partner, txn)
    reversal = _reverse(txn)
    drain_all(platform.id)
    assert _row("reverse_transfer", reversal).last_error_code == "dependency_failed"
    skip_item("operator@example.org", push.id, "paid in cash")
    sweep()  # an operator's skip happens outside a delivery: the sweeper follows it
    row = _row("reverse_transfer", reversal)
    assert (row.state, row.last_error_code) == ("skipped", "dependency_skipped")
    assert _nets(partner, alice, bob) == [(0, 0), (0, 0)]

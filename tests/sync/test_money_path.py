"""The money path as a state machine: whatever mix of pushes, reversals, partner errors, dead
letters, operator retries and skips and reconciliations happens, once all due work is done the
partner's net equals the ledger's for every member (less what an operator chose to skip).

Everything real: ledger postings write outbox rows, the drain job delivers them over HTTP to the
sandbox timebank (which honours Idempotency-Key and keeps its own balances), the operator acts
through the admin actions, reconciliation is the scheduled job's own code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from gateway.admin.actions import retry_item, skip_item
from gateway.db import db
from gateway.federation.models import Platform
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

pytestmark = pytest.mark.slow

MEMBERS = 3
MAX_ATTEMPTS = 2
OPERATOR = "operator@example.org"


@dataclass
class Posted:
    """A transfer the ledger holds, its members and minutes, and its reversal if any."""

    id: str
    payer: int
    payee: int
    minutes: int
    reversal_id: str | None = None


@dataclass
class Model:
    """What the test knows without asking the system: postings, and the operator's skips."""

    transfers: list[Posted] = field(default_factory=list)
    skipped: set[str] = field(default_factory=set)  # transfers whose push the operator skipped

    def expected_at_partner(self, member: int) -> int:
        """Every transfer not skipped arrived, and so did its reversal."""
        net = 0
        for posted in self.transfers:
            if posted.id in self.skipped or posted.reversal_id is not None:
                continue  # skipped: neither arrives; reversed: both do, net zero
            net += posted.minutes * ((member == posted.payee) - (member == posted.payer))
        return net


class MoneyPath(RuleBasedStateMachine):
    """One platform on the sandbox, three members linked to it, and everything that can happen.

    The platform and its members outlive one example (linking them costs more than a run):
    each example starts from a quiet point and counts from the balances it finds there, and
    the operator acts only on the rows of its own postings.
    """

    def __init__(self, partner, platform_id: str, members: list[tuple[str, str]]) -> None:
        super().__init__()
        self.partner = partner
        self.platform_id = platform_id
        self.members = members
        self.model = Model()
        self.quiet = False
        self.started = False

    @initialize()
    def take_baseline(self) -> None:
        db.session.rollback()
        self.base_partner = [self.partner.balance(wallet) for _, wallet in self.members]
        self.base_ledger = [
            ledger.account_for_member(member).balance_minutes for member, _ in self.members
        ]
        self.started = True

    # What members do

    @rule(
        payer=st.integers(0, MEMBERS - 1),
        step=st.integers(1, MEMBERS - 1),
        minutes=st.integers(1, 240),
    )
    def push(self, payer: int, step: int, minutes: int) -> None:
        payee = (payer + step) % MEMBERS
        txn = ledger.post_transfer(
            payer_account_id=ledger.account_for_member(self.members[payer][0]).id,
            payee_account_id=ledger.account_for_member(self.members[payee][0]).id,
            minutes=minutes,
            description="help",
            kind="help",
        )
        db.session.commit()
        self.model.transfers.append(Posted(txn.id, payer, payee, minutes))
        self.quiet = False

    @precondition(lambda self: any(p.reversal_id is None for p in self.model.transfers))
    @rule(data=st.data())
    def reverse(self, data: st.DataObject) -> None:
        open_ = [p for p in self.model.transfers if p.reversal_id is None]
        posted = data.draw(st.sampled_from(open_), label="transfer")
        reversal = ledger.reverse_transaction(posted.id, reason="entered by mistake")
        db.session.commit()
        posted.reversal_id = reversal.id
        self.quiet = False

    # What the partner and the workers do

    @rule(until_dead=st.booleans())
    def fail(self, until_dead: bool) -> None:
        """The partner answers every request with a server error, for one drain or until every
        open row has spent its attempts (a dead letter)."""
        self.partner.faults(error_rate=1.0)
        for _ in range(MAX_ATTEMPTS + 1 if until_dead else 1):
            drain_once(self.platform_id)
        self.partner.clear()
        self.quiet = False

    @rule()
    def deliver(self) -> None:
        """The partner is well: every due row is delivered."""
        drain_all(self.platform_id)
        self.quiet = False  # dead letters wait for reconciliation: not a quiet point yet

    @rule()
    def reconcile(self) -> None:
        reconcile_platform(self.platform_id)
        self.quiet = False

    # What operators do

    def _rows(self, states: tuple[str, ...], kinds: tuple[str, ...]) -> list[OutboxItem]:
        db.session.rollback()
        ours = [p.id for p in self.model.transfers]
        ours += [p.reversal_id for p in self.model.transfers if p.reversal_id]
        return list(
            db.session.scalars(
                select(OutboxItem)
                .where(
                    OutboxItem.platform_id == self.platform_id,
                    OutboxItem.state.in_(states),
                    OutboxItem.kind.in_(kinds),
                    OutboxItem.transaction_id.in_(ours),
                )
                .order_by(OutboxItem.created_at, OutboxItem.id)
            )
        )

    def _retryable(self) -> list[OutboxItem]:
        return self._rows(("dead", "skipped"), ("push_transfer", "reverse_transfer"))

    def _skippable(self) -> list[OutboxItem]:
        return self._rows(("pending", "dead"), ("push_transfer",))

    @precondition(lambda self: self._retryable())
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        row = data.draw(st.sampled_from(self._retryable()), label="row to retry")
        retry_item(OPERATOR, row.id)
        if row.kind == "push_transfer":
            self.model.skipped.discard(row.transaction_id)
        self.quiet = False

    @precondition(lambda self: self._skippable())
    @rule(data=st.data())
    def skip(self, data: st.DataObject) -> None:
        row = data.draw(st.sampled_from(self._skippable()), label="push to skip")
        skip_item(OPERATOR, row.id, "settled by other means")
        self.model.skipped.add(row.transaction_id)
        self.quiet = False

    # Quiet points

    @rule()
    def settle(self) -> None:
        """All due work done: sweep, deliver, let reconciliation revive what died, deliver."""
        self.partner.clear()
        sweep()
        drain_all(self.platform_id)
        self.run = reconcile_platform(self.platform_id)
        drain_all(self.platform_id)
        self.quiet = True

    @invariant()
    def nets_agree_at_quiet_points(self) -> None:
        if not self.quiet:
            return
        self.check_nets()

    def check_nets(self) -> None:
        db.session.rollback()
        for n, (member_id, wallet) in enumerate(self.members):
            at_partner = self.partner.balance(wallet) - self.base_partner[n]
            ledger_net = ledger.account_for_member(member_id).balance_minutes - self.base_ledger[n]
            # The ledger's net less the skipped transfers (each with its reversal) is what
            # the partner must hold: nothing lost, nothing twice, no reversal left behind.
            skipped_net = sum(
                p.minutes * ((n == p.payee) - (n == p.payer))
                for p in self.model.transfers
                if p.id in self.model.skipped and p.reversal_id is None
            )
            assert at_partner == ledger_net - skipped_net, (
                f"member {n}: partner {at_partner}, ledger {ledger_net}, skipped {skipped_net}"
            )
            assert at_partner == self.model.expected_at_partner(n)
        # What the settling reconciliation found different, it could explain.
        unexplained = db.session.scalars(
            select(ReconciliationDifference).where(
                ReconciliationDifference.run_id == self.run.id,
                ReconciliationDifference.explanation == "unexplained",
            )
        ).all()
        assert self.run.state == "succeeded"
        assert unexplained == []

    def teardown(self) -> None:
        if self.started:
            self.settle()
            self.check_nets()
        db.session.rollback()


def test_the_partner_s_net_equals_the_ledger_s_at_every_quiet_point(app, sandbox_partner):
    app.config.update(
        SYNC_MAX_ATTEMPTS=MAX_ATTEMPTS,
        # The faults are the test's own: an open circuit would only hide them.
        SYNC_CIRCUIT_THRESHOLD=1_000_000,
        LEDGER_DEFAULT_CREDIT_LIMIT_MINUTES=-1_000_000,
    )
    with app.app_context():
        platform_id = add_sandbox_platform(sandbox_partner).id
        members = linked_members(db.session.get(Platform, platform_id), MEMBERS)
        run_state_machine_as_test(
            lambda: MoneyPath(sandbox_partner, platform_id, members),
            settings=settings(
                max_examples=12,
                stateful_step_count=12,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )

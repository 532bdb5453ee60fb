"""Property tests: random postings and reversals never break the ledger's invariants.

After every step, on whatever database the fixtures give (SQLite, or PostgreSQL with
TEST_DATABASE_URL): each transaction balances; each cached balance equals the sum of the
account's entries and the balance a plain model predicts; no balance is below its limit; a
reversal is the exact negation of what it reverses; refusals happen exactly when the model says.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from gateway.db import db
from gateway.ledger import services as ledger
from gateway.ledger.errors import AlreadyReversed, CreditLimitExceeded, UnbalancedTransaction
from gateway.ledger.models import Account, Entry
from gateway.members.models import new_id
from tests.factories import create_member
from tests.ledger.conftest import cached_balance, entries_sum

# A function-scoped database is shared by the examples of one test: each example makes its own
# accounts, so examples stay independent while the invariants are checked on a growing ledger.
LEDGER_SETTINGS = settings(
    max_examples=75,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Round amounts and limits (as people use) make postings land exactly on a limit often.
limit_strategy = st.one_of(
    st.none(), st.sampled_from([0, -60, -120, -300, -600]), st.integers(min_value=-900, max_value=0)
)
minutes_strategy = st.one_of(
    st.sampled_from([30, 60, 120, 180]), st.integers(min_value=1, max_value=400)
)
post_strategy = st.tuples(
    st.just("post"),
    st.integers(min_value=0, max_value=3),
    st.integers(min_value=0, max_value=3),
    minutes_strategy,
)
reverse_strategy = st.tuples(st.just("reverse"), st.integers(min_value=0, max_value=40))
operations = st.lists(st.one_of(post_strategy, reverse_strategy), min_size=1, max_size=25)


@dataclass
class Posted:
    """What the model remembers of a posted transaction."""

    id: str
    entries: list[tuple[str, int]]
    is_reversal: bool
    reversed: bool = False


@dataclass
class Model:
    """The ledger as plain Python: balances and limits per account."""

    limits: dict[str, int | None]
    balances: dict[str, int] = field(default_factory=dict)
    posted: list[Posted] = field(default_factory=list)

    def refuses(self, entries: list[tuple[str, int]]) -> bool:
        """Whether applying ``entries`` would take a debited account below its limit."""
        return any(
            amount < 0
            and self.limits[account] is not None
            and self.balances[account] + amount < self.limits[account]
            for account, amount in entries
        )

    def apply(self, entries: list[tuple[str, int]]) -> None:
        """Add the entries to the balances."""
        for account, amount in entries:
            self.balances[account] += amount


def _make_accounts(limits: list[int | None]) -> Model:
    """Two members, an organization (limits as drawn) and a clearing account (no limit)."""
    db.session.rollback()  # a failed example must not poison the next one's session
    ids = [ledger.account_for_member(create_member().id).id for _ in range(2)]
    org = ledger.create_organization(name="Coop", credit_limit_minutes=limits[2])
    ids.append(ledger.account_for_organization(org.id).id)
    ids.append(ledger.clearing_account(new_id()).id)
    for account_id, limit in zip(ids[:2], limits[:2], strict=True):
        db.session.get(Account, account_id).credit_limit_minutes = limit
    db.session.commit()
    model = Model(limits=dict(zip(ids, [*limits, None], strict=True)))
    model.balances = dict.fromkeys(ids, 0)
    return model


def _check_invariants(model: Model) -> None:
    db.session.expire_all()
    for account_id, expected in model.balances.items():
        cached = cached_balance(account_id)
        assert cached == entries_sum(account_id) == expected
        limit = model.limits[account_id]
        assert limit is None or cached >= limit
    unbalanced = db.session.execute(
        select(Entry.transaction_id)
        .group_by(Entry.transaction_id)
        .having((func.sum(Entry.amount_minutes) != 0) | (func.count() < 2))
    ).all()
    assert unbalanced == []


def _post(model: Model, ids: list[str], payer: int, payee: int, minutes: int) -> None:
    entries = [(ids[payer], -minutes), (ids[payee], minutes)]
    try:
        txn = ledger.post_transfer(
            payer_account_id=ids[payer],
            payee_account_id=ids[payee],
            minutes=minutes,
            description="property",
        )
    except UnbalancedTransaction:
        db.session.rollback()
        assert payer == payee
        return
    except CreditLimitExceeded:
        db.session.rollback()
        assert model.refuses(entries)
        return
    db.session.commit()
    assert payer != payee
    assert not model.refuses(entries)
    model.apply(entries)
    model.posted.append(Posted(txn.id, entries, is_reversal=False))


def _reverse(model: Model, index: int) -> None:
    if not model.posted:
        return
    original = model.posted[index % len(model.posted)]
    negated = [(account, -amount) for account, amount in original.entries]
    try:
        reversal = ledger.reverse_transaction(original.id, reason="property")
    except AlreadyReversed:
        db.session.rollback()
        assert original.is_reversal or original.reversed
        return
    except CreditLimitExceeded:
        db.session.rollback()
        assert not original.is_reversal
        assert not original.reversed
        assert model.refuses(negated)
        return
    db.session.commit()
    assert not original.is_reversal
    assert not original.reversed
    assert not model.refuses(negated)
    assert sorted((e.account_id, e.amount_minutes) for e in reversal.entries) == sorted(negated)
    original.reversed = True
    model.apply(negated)
    model.posted.append(Posted(reversal.id, negated, is_reversal=True))


@LEDGER_SETTINGS
@given(
    limits=st.lists(limit_strategy, min_size=3, max_size=3),
    steps=operations,
)
def test_random_postings_and_reversals_keep_the_invariants(db_session, limits, steps):
    model = _make_accounts(limits)
    ids = list(model.balances)
    for step in steps:
        if step[0] == "post":
            _, payer, payee, minutes = step
            _post(model, ids, payer, payee, minutes)
        else:
            _reverse(model, step[1])
        _check_invariants(model)


@LEDGER_SETTINGS
@given(
    amounts=st.lists(st.integers(min_value=1, max_value=30), min_size=0, max_size=12),
    page_size=st.integers(min_value=1, max_value=5),
)
def test_statement_pages_cover_every_entry_once_newest_first(db_session, amounts, page_size):
    model = _make_accounts([None, None, None])
    payer, payee = list(model.balances)[:2]
    for minutes in amounts:
        ledger.post_transfer(
            payer_account_id=payer, payee_account_id=payee, minutes=minutes, description=""
        )
        db.session.commit()
    lines, cursor = ledger.statement(payer, limit=page_size)
    pages = [lines]
    while cursor is not None:
        lines, cursor = ledger.statement(payer, cursor=cursor, limit=page_size)
        pages.append(lines)
    seen = [line for page in pages for line in page]
    assert all(len(page) <= page_size for page in pages)
    assert [-line.amount_minutes for line in seen] == list(reversed(amounts))
    assert [line.entry_id for line in seen] == sorted(
        {line.entry_id for line in seen}, reverse=True
    )
    running = [line.balance_after_minutes for line in reversed(seen)]
    assert running == [-sum(amounts[: i + 1]) for i in range(len(amounts))]

"""The ledger's services: accounts, postings, limits, reversals, imports and statements."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, func, select

from gateway.db import db
from gateway.ledger import services as ledger
from gateway.ledger.errors import (
    AccountNotFound,
    AlreadyReversed,
    CreditLimitExceeded,
    DuplicateExternal,
    InvalidCursor,
    InvalidParty,
    TransactionNotFound,
    UnbalancedTransaction,
)
from gateway.ledger.events import transaction_posted, transaction_reversed
from gateway.ledger.models import Account, Entry, Organization, Transaction
from gateway.ledger.services import Party
from gateway.members.models import Member
from tests.factories import create_member
from tests.ledger.conftest import cached_balance, entries_sum


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _anna_pays_bruno(accounts, minutes: int, description: str = "", **options) -> Transaction:
    return ledger.post_transfer(
        payer_account_id=accounts.anna,
        payee_account_id=accounts.bruno,
        minutes=minutes,
        description=description,
        **options,
    )


# -- accounts -----------------------------------------------------------------------------------


def test_member_account_is_created_once_with_the_default_limit(db_session):
    member = create_member()
    first = ledger.account_for_member(member.id)
    second = ledger.account_for_member(member.id)
    assert first.id == second.id
    assert (first.kind, first.member_id, first.credit_limit_minutes) == ("member", member.id, -600)
    assert first.balance_minutes == 0


def test_default_limit_comes_from_config(make_app):
    app = make_app(LEDGER_DEFAULT_CREDIT_LIMIT_MINUTES=-120)
    with app.app_context():
        member = create_member()
        assert ledger.account_for_member(member.id).credit_limit_minutes == -120


def test_account_for_unknown_member_or_organization_is_refused(db_session):
    with pytest.raises(AccountNotFound):
        ledger.account_for_member("no-such-member")
    with pytest.raises(AccountNotFound):
        ledger.account_for_organization("no-such-organization")
    assert _count(Account) == 0


def test_clearing_account_has_no_limit_and_one_per_platform(db_session):
    first = ledger.clearing_account("platform-a")
    assert first.credit_limit_minutes is None
    assert ledger.clearing_account("platform-a").id == first.id
    assert ledger.clearing_account("platform-b").id != first.id


def test_get_balance_of_unknown_account_is_refused(db_session):
    with pytest.raises(AccountNotFound):
        ledger.get_balance("nope")


# -- postings -----------------------------------------------------------------------------------


def test_transfer_moves_minutes_and_records_running_balances(db_session, accounts):
    txn = ledger.post_transfer(
        payer_account_id=accounts.anna,
        payee_account_id=accounts.coop,
        minutes=180,
        description="Desk, morning",
        kind="desk",
    )
    db_session.commit()
    assert ledger.get_balance(accounts.anna) == -180
    assert ledger.get_balance(accounts.coop) == 180
    assert [(e.account_id, e.amount_minutes, e.balance_after_minutes) for e in txn.entries] == [
        (accounts.anna, -180, -180),
        (accounts.coop, 180, 180),
    ]
    assert (txn.minutes, txn.payer_account_id, txn.payee_account_id) == (
        180,
        accounts.anna,
        accounts.coop,
    )


def test_general_posting_with_three_entries(db_session, accounts):
    txn = ledger.post_transaction(
        [(accounts.clearing, -90), (accounts.anna, 60), (accounts.bruno, 30)],
        description="Import split",
        kind="import",
        source="reconcile",
    )
    db_session.commit()
    assert sum(e.amount_minutes for e in txn.entries) == 0
    assert ledger.get_balance(accounts.clearing) == -90
    assert txn.payer_account_id == accounts.clearing
    assert txn.payee_account_id is None  # two accounts credited


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([("A", -10), ("B", 5)], "sum to -5"),
        ([("A", -10)], "at least two"),
        ([("A", 0), ("B", 0)], "zero"),
        ([("A", -10), ("A", 10)], "more than once"),
        ([("A", -1.5), ("B", 1.5)], "whole minutes"),
    ],
)
def test_unbalanced_or_malformed_entries_are_refused(db_session, accounts, entries, message):
    names = {"A": accounts.anna, "B": accounts.bruno}
    with pytest.raises(UnbalancedTransaction, match=message):
        ledger.post_transaction([(names[a], m) for a, m in entries], description="x")
    assert _count(Transaction) == 0


def test_transfer_of_non_positive_minutes_is_refused(db_session, accounts):
    for minutes in (0, -5, True):
        with pytest.raises(UnbalancedTransaction):
            _anna_pays_bruno(accounts, minutes)


def test_posting_to_an_unknown_account_is_refused(db_session, accounts):
    with pytest.raises(AccountNotFound) as caught:
        ledger.post_transfer(
            payer_account_id=accounts.anna, payee_account_id="ghost", minutes=5, description=""
        )
    assert caught.value.account_id == "ghost"
    assert _count(Transaction) == 0


def test_unknown_kind_and_naive_time_are_programming_errors(db_session, accounts):
    with pytest.raises(ValueError, match="kind"):
        _anna_pays_bruno(accounts, 5, kind="gift")
    with pytest.raises(ValueError, match="timezone"):
        _anna_pays_bruno(accounts, 5, occurred_at=datetime(2026, 1, 1))  # naive on purpose


def test_occurred_at_is_kept(db_session, accounts):
    when = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    txn = _anna_pays_bruno(accounts, 5, occurred_at=when)
    db_session.commit()
    db_session.expire_all()
    assert db_session.get(Transaction, txn.id).occurred_at == when


def test_posting_down_to_the_limit_is_allowed_and_past_it_refused(db_session, accounts):
    _anna_pays_bruno(accounts, 600)
    db_session.commit()
    assert ledger.get_balance(accounts.anna) == -600
    with pytest.raises(CreditLimitExceeded) as caught:
        _anna_pays_bruno(accounts, 1)
    error = caught.value
    assert (error.account_id, error.balance, error.limit, error.attempted) == (
        accounts.anna,
        -600,
        -600,
        -1,
    )
    assert "may not go below -600" in str(error)
    db_session.rollback()
    assert ledger.get_balance(accounts.anna) == -600


def test_clearing_account_may_go_negative_without_limit(db_session, accounts):
    ledger.post_transfer(
        payer_account_id=accounts.clearing,
        payee_account_id=accounts.anna,
        minutes=100_000,
        description="Imported",
        kind="import",
    )
    db_session.commit()
    assert ledger.get_balance(accounts.clearing) == -100_000


def test_refused_posting_leaves_the_callers_transaction_usable(db_session, accounts):
    member = Member(email="pending@example.org", display_name="Pending")
    db_session.add(member)
    with pytest.raises(CreditLimitExceeded):
        _anna_pays_bruno(accounts, 601)
    db_session.commit()  # the caller's own work still commits
    assert db_session.scalar(select(Member).where(Member.email == "pending@example.org"))
    assert _count(Transaction) == 0


def _member_of(account_id: str) -> str:
    return db.session.get(Account, account_id).member_id


@contextmanager
def _account_reads(engine):
    """A list that fills with the SELECTs on ledger_accounts sent inside the block."""
    reads: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("SELECT") and "ledger_accounts" in statement:
            reads.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield reads
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_resolved_parties_are_not_read_again_by_the_next_posting(db_session, accounts):
    anna, bruno = _member_of(accounts.anna), _member_of(accounts.bruno)
    db_session.commit()
    parties = ledger.resolve_parties(Party("member_id", anna), Party("member_id", bruno))
    assert (parties.payer.id, parties.payee.id) == (accounts.anna, accounts.bruno)
    with _account_reads(db_session.get_bind()) as reads:
        _anna_pays_bruno(accounts, 30, "first", locked=parties.locked)
        assert reads == []
        # The reads are used once: the next posting reads the accounts again (under the locks).
        _anna_pays_bruno(accounts, 20, "second", locked=parties.locked)
        assert len(reads) == 1
    db_session.commit()
    assert (cached_balance(accounts.anna), cached_balance(accounts.bruno)) == (-50, 50)


def test_parties_are_locked_and_read_in_one_statement(db_session, accounts):
    anna = _member_of(accounts.anna)
    coop = db_session.get(Account, accounts.coop).organization_id
    db_session.commit()
    with _account_reads(db_session.get_bind()) as reads:
        parties = ledger.resolve_parties(Party("member_id", anna), Party("organization_id", coop))
        assert len(reads) == 1
        ledger.post_transfer(
            payer_account_id=parties.payer.id,
            payee_account_id=parties.payee.id,
            minutes=30,
            description="desk",
            kind="desk",
            locked=parties.locked,
        )
        assert len(reads) == 1  # the posting read neither account again
    db_session.commit()
    assert (cached_balance(accounts.anna), cached_balance(accounts.coop)) == (-30, 30)


def test_locked_reads_do_not_outlive_their_transaction(db_session, accounts):
    anna = _member_of(accounts.anna)
    db_session.commit()
    parties = ledger.resolve_parties(Party("member_id", anna), Party("account_id", accounts.bruno))
    db_session.commit()  # the locks are gone (and the session keeps its objects unexpired)
    # Another session moves the balance meanwhile; a stale read would let the limit be crossed.
    with db_session.get_bind().begin() as other:
        other.execute(
            Account.__table__.update()
            .where(Account.__table__.c.id == accounts.anna)
            .values(balance_minutes=-590)
        )
    with pytest.raises(CreditLimitExceeded):
        _anna_pays_bruno(accounts, 11, locked=parties.locked)
    db_session.rollback()


def test_an_inactive_member_is_refused_as_a_party(db_session, accounts):
    anna = _member_of(accounts.anna)
    db_session.get(Member, anna).status = "disabled"
    db_session.commit()
    for named in (Party("member_id", anna), Party("account_id", accounts.anna)):
        with pytest.raises(InvalidParty, match="no active member") as caught:
            ledger.resolve_parties(named, Party("account_id", accounts.bruno))
        assert caught.value.field == ("payer", "member_id")
        db_session.rollback()


@pytest.mark.parametrize(
    ("payee", "field"),
    [
        ("unknown member", ("payee", "member_id")),
        ("unknown organization", ("payee", "organization_id")),
        ("unknown account", ("payee", "account_id")),
        ("clearing", ("payee", "account_id")),
        ("payer", ("payee",)),
    ],
)
def test_parties_are_refused_with_the_field_at_fault(db_session, accounts, payee, field):
    unknown = "00000000-0000-4000-8000-000000000000"
    named = {
        "unknown member": Party("member_id", unknown),
        "unknown organization": Party("organization_id", unknown),
        "unknown account": Party("account_id", unknown),
        "clearing": Party("account_id", accounts.clearing),
        "payer": Party("account_id", accounts.anna),
    }[payee]
    anna = _member_of(accounts.anna)
    with pytest.raises(InvalidParty) as caught:
        ledger.resolve_parties(Party("member_id", anna), named)
    assert caught.value.field == field
    db_session.rollback()
    assert _count(Account) == 4


def test_first_postings_create_the_parties_accounts(db_session):
    member = create_member()
    coop = Organization(name="Nuova cooperativa")
    db_session.add(coop)
    db_session.commit()
    payer, payee = Party("member_id", member.id), Party("organization_id", coop.id)
    parties = ledger.resolve_parties(payer, payee)
    assert (parties.payer.member_id, parties.payee.organization_id) == (member.id, coop.id)
    ledger.post_transfer(
        payer_account_id=parties.payer.id,
        payee_account_id=parties.payee.id,
        minutes=60,
        description="first desk",
        kind="desk",
        locked=parties.locked,
    )
    db_session.commit()
    assert cached_balance(parties.payer.id) == entries_sum(parties.payer.id) == -60


def test_a_party_names_a_member_an_organization_or_an_account(db_session, accounts):
    with pytest.raises(ValueError, match="member_id, organization_id or account_id"):
        ledger.resolve_parties(Party("email", "anna@example.org"), Party("member_id", "x"))


@pytest.mark.parametrize(
    ("kind", "payer", "payee", "allowed"),
    [
        ("desk", "anna", "coop", True),
        ("desk", "anna", "bruno", False),  # a desk is paid to an organization
        ("desk", "coop", "anna", False),  # by a member
        ("help", "anna", "bruno", True),
        ("help", "anna", "coop", False),  # help is between members
        ("transfer", "coop", "anna", True),
    ],
)
def test_desk_and_help_move_minutes_between_their_kinds_of_account(
    db_session, accounts, kind, payer, payee, allowed
):
    def post():
        return ledger.post_transfer(
            payer_account_id=getattr(accounts, payer),
            payee_account_id=getattr(accounts, payee),
            minutes=10,
            description="",
            kind=kind,
        )

    if allowed:
        post()
        db_session.commit()
        assert _count(Transaction) == 1
        return
    with pytest.raises(InvalidParty) as caught:
        post()
    assert caught.value.field == ("kind",)
    db_session.rollback()
    assert _count(Transaction) == 0


def test_services_do_not_commit(db_session, accounts):
    _anna_pays_bruno(accounts, 30)
    db_session.rollback()
    assert _count(Transaction) == 0
    assert _count(Entry) == 0
    assert ledger.get_balance(accounts.anna) == 0


def test_posted_signal_is_sent_inside_the_open_transaction(db_session, accounts):
    seen = []

    def on_posted(sender, transaction):
        # The subscriber sees flushed rows and can add its own in the same transaction.
        seen.append((sender, transaction.id, len(transaction.entries)))
        assert db.session.in_transaction()
        assert db.session.get(Transaction, transaction.id) is transaction
        db.session.add(Member(email="outbox-stand-in@example.org", display_name="Outbox"))

    with transaction_posted.connected_to(on_posted):
        txn = _anna_pays_bruno(accounts, 5)
    assert seen == [(None, txn.id, 2)]
    db_session.rollback()  # the subscriber's row goes with the posting
    assert db_session.scalar(select(func.count()).select_from(Member)) == 2


# -- reversals ----------------------------------------------------------------------------------


def _desk(accounts, minutes=120) -> Transaction:
    txn = ledger.post_transfer(
        payer_account_id=accounts.anna,
        payee_account_id=accounts.coop,
        minutes=minutes,
        description="Desk",
        kind="desk",
    )
    db.session.commit()
    return txn


def test_reversal_restores_balances_and_points_back(db_session, accounts):
    original = _desk(accounts)
    reversed_seen = []
    with transaction_reversed.connected_to(
        lambda sender, transaction: reversed_seen.append(transaction.id)
    ):
        reversal = ledger.reverse_transaction(original.id, reason="Entered twice")
    db_session.commit()
    assert reversal.kind == "reversal"
    assert reversal.reversal_of == original.id
    assert reversal.description == "Entered twice"
    assert reversed_seen == [reversal.id]
    assert ledger.get_balance(accounts.anna) == 0
    assert ledger.get_balance(accounts.coop) == 0
    assert ledger.reversal_of(original.id).id == reversal.id
    assert sorted((e.account_id, e.amount_minutes) for e in reversal.entries) == sorted(
        (e.account_id, -e.amount_minutes) for e in original.entries
    )


def test_a_transaction_is_reversed_at_most_once(db_session, accounts):
    original = _desk(accounts)
    reversal = ledger.reverse_transaction(original.id, reason="mistake")
    db_session.commit()
    with pytest.raises(AlreadyReversed, match="reversed already"):
        ledger.reverse_transaction(original.id, reason="again")
    with pytest.raises(AlreadyReversed, match="itself a reversal"):
        ledger.reverse_transaction(reversal.id, reason="undo the undo")


def test_reversal_that_would_cross_a_limit_is_refused(db_session, accounts):
    original = _anna_pays_bruno(accounts, 300)
    ledger.post_transfer(
        payer_account_id=accounts.bruno, payee_account_id=accounts.coop, minutes=600, description=""
    )
    db_session.commit()  # bruno: +300 - 600 = -300; undoing anna's 300 would take him to -600
    ledger.post_transfer(
        payer_account_id=accounts.bruno, payee_account_id=accounts.coop, minutes=1, description=""
    )
    db_session.commit()
    with pytest.raises(CreditLimitExceeded) as caught:
        ledger.reverse_transaction(original.id, reason="late correction")
    assert caught.value.account_id == accounts.bruno


def test_reversing_unknown_transaction_is_refused(db_session):
    with pytest.raises(TransactionNotFound):
        ledger.reverse_transaction("nope", reason="x")


def test_concurrent_reversal_is_decided_by_the_unique_constraint(db_session, accounts, monkeypatch):
    original = _desk(accounts)
    ledger.reverse_transaction(original.id, reason="first")
    db_session.commit()
    real = ledger._reversal_of
    calls = []

    def blind_first_look(transaction_id):
        calls.append(transaction_id)
        return None if len(calls) == 1 else real(transaction_id)

    # Blind the check under the lock, as if the other reversal committed just after it ran.
    monkeypatch.setattr(ledger, "_reversal_of", blind_first_look)
    with pytest.raises(AlreadyReversed):
        ledger.reverse_transaction(original.id, reason="second")


# -- imports of remote transfers ------------------------------------------------------------------


def _import(accounts, remote_id: str) -> Transaction:
    return ledger.post_transfer(
        payer_account_id=accounts.clearing,
        payee_account_id=accounts.anna,
        minutes=60,
        description="Remote transfer",
        kind="import",
        source="callback",
        external=("platform-1", remote_id),
    )


def test_a_remote_transfer_imports_exactly_once(db_session, accounts):
    first = _import(accounts, "tr-1")
    db_session.commit()
    assert ledger.find_by_external("platform-1", "tr-1").id == first.id
    assert ledger.find_by_external("platform-1", "tr-2") is None
    with pytest.raises(DuplicateExternal) as caught:
        _import(accounts, "tr-1")
    assert caught.value.existing_transaction_id == first.id
    db_session.rollback()
    assert ledger.get_balance(accounts.anna) == 60


def test_duplicate_import_race_is_caught_in_a_savepoint(db_session, accounts, monkeypatch):
    first = _import(accounts, "tr-9")
    db_session.commit()
    real = ledger.find_by_external
    calls = []

    def blind_first_look(platform_id, remote_id):
        calls.append(remote_id)
        return None if len(calls) == 1 else real(platform_id, remote_id)

    # The pre-check misses the row, so the unique constraint has to speak.
    monkeypatch.setattr(ledger, "find_by_external", blind_first_look)
    member = Member(email="kept@example.org", display_name="Kept")
    db_session.add(member)
    with pytest.raises(DuplicateExternal) as caught:
        _import(accounts, "tr-9")
    assert caught.value.existing_transaction_id == first.id
    db_session.commit()  # only the savepoint was rolled back
    assert db_session.scalar(select(Member).where(Member.email == "kept@example.org"))
    assert ledger.get_balance(accounts.anna) == 60
    assert _count(Transaction) == 1


# -- statements ---------------------------------------------------------------------------------


def _pay(accounts, minutes: int) -> Transaction:
    txn = _anna_pays_bruno(accounts, minutes, f"help {minutes}", kind="help")
    db.session.commit()
    return txn


def test_statement_pages_newest_first_with_running_balance(db_session, accounts):
    for minutes in range(1, 6):
        _pay(accounts, minutes)
    page, cursor = ledger.statement(accounts.anna, limit=2)
    assert [line.amount_minutes for line in page] == [-5, -4]
    assert [line.balance_after_minutes for line in page] == [-15, -10]
    assert page[0].counterparty_account_ids == [accounts.bruno]
    seen = [line.entry_id for line in page]
    while cursor is not None:
        page, cursor = ledger.statement(accounts.anna, cursor=cursor, limit=2)
        seen += [line.entry_id for line in page]
    assert len(seen) == 5
    assert seen == sorted(seen, reverse=True)


def test_statement_cursor_is_stable_under_new_postings(db_session, accounts):
    for minutes in range(1, 5):
        _pay(accounts, minutes)
    first, cursor = ledger.statement(accounts.anna, limit=2)
    _pay(accounts, 50)  # posted while the client pages
    rest, end = ledger.statement(accounts.anna, cursor=cursor, limit=10)
    assert end is None
    assert [line.amount_minutes for line in first + rest] == [-4, -3, -2, -1]
    fresh, _ = ledger.statement(accounts.anna, limit=1)
    assert fresh[0].amount_minutes == -50


def test_statement_of_empty_and_unknown_accounts(db_session, accounts):
    assert ledger.statement(accounts.coop) == ([], None)
    with pytest.raises(AccountNotFound):
        ledger.statement("nope")


@pytest.mark.parametrize("cursor", ["garbage!", "ZTE6", "eDE6MTA", ""])
def test_statement_refuses_foreign_cursors(db_session, accounts, cursor):
    with pytest.raises(InvalidCursor):
        ledger.statement(accounts.anna, cursor=cursor)


def test_cached_balance_equals_sum_of_entries(db_session, accounts):
    _pay(accounts, 7)
    _pay(accounts, 11)
    for account_id in (accounts.anna, accounts.bruno):
        assert cached_balance(account_id) == entries_sum(account_id)


def test_a_posting_leaves_the_session_as_a_flush_would(db_session, accounts):
    # The rows are written with bulk statements; the objects must still be whole and current,
    # and nothing may be written twice when the caller commits.

    anna = db_session.get(Account, accounts.anna)
    txn = ledger.post_transfer(
        payer_account_id=accounts.anna,
        payee_account_id=accounts.coop,
        minutes=30,
        description="desk",
        kind="desk",
        metadata={"note": "x"},
    )
    assert not db_session.new
    assert not db_session.dirty
    assert db_session.get(Transaction, txn.id) is txn
    assert [(e.account_id, e.amount_minutes, e.balance_after_minutes) for e in txn.entries] == [
        (accounts.anna, -30, -30),
        (accounts.coop, 30, 30),
    ]
    assert all(isinstance(e.id, int) for e in txn.entries)
    assert txn.entries[0].id < txn.entries[1].id
    assert txn.entries[0].transaction is txn
    assert txn.meta == {"note": "x"}
    assert anna.balance_minutes == -30
    db_session.commit()
    db_session.expire_all()
    stored = db_session.get(Transaction, txn.id)
    assert [e.id for e in stored.entries] == [e.id for e in txn.entries]
    assert stored.meta == {"note": "x"}
    assert db_session.scalar(select(func.count()).select_from(Entry)) == 2
    assert cached_balance(accounts.anna) == entries_sum(accounts.anna) == -30

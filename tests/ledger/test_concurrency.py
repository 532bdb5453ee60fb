"""Parallel postings: no lost update, no crossed limit, no deadlock.

The same scenarios run on SQLite (which must serialize its writers) and, with TEST_DATABASE_URL,
on PostgreSQL, where the row locks do the work; the lock itself is proven on PostgreSQL only.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from gateway.db import db
from gateway.ledger import services as ledger
from gateway.ledger.errors import CreditLimitExceeded
from gateway.ledger.models import Account, Organization
from gateway.ledger.services import Party
from tests.ledger.conftest import cached_balance, entries_sum

THREADS = 8
ATTEMPTS_PER_THREAD = 6


def _in_threads(app, work, count: int) -> list:
    """Run ``work(index)`` in ``count`` threads at once, each in its own app context."""
    barrier = threading.Barrier(count)

    def run(index: int):
        with app.app_context():
            barrier.wait()
            try:
                return work(index)
            finally:
                db.session.rollback()
                db.remove()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


@pytest.mark.postgres
@pytest.mark.slow
def test_parallel_postings_never_lose_an_update_nor_cross_the_limit(app, accounts):
    # anna may go down to -600: of 48 attempts of 25 minutes exactly 24 can succeed.
    def spend(_index: int) -> Counter:
        outcomes: Counter = Counter()
        for _ in range(ATTEMPTS_PER_THREAD):
            try:
                ledger.post_transfer(
                    payer_account_id=accounts.anna,
                    payee_account_id=accounts.coop,
                    minutes=25,
                    description="desk",
                    kind="desk",
                )
                db.session.commit()
                outcomes["posted"] += 1
            except CreditLimitExceeded:
                db.session.rollback()
                outcomes["refused"] += 1
        return outcomes

    totals = sum(_in_threads(app, spend, THREADS), Counter())
    with app.app_context():
        assert totals == Counter(posted=24, refused=THREADS * ATTEMPTS_PER_THREAD - 24)
        assert cached_balance(accounts.anna) == entries_sum(accounts.anna) == -600
        assert cached_balance(accounts.coop) == entries_sum(accounts.coop) == 600


@pytest.mark.postgres
@pytest.mark.slow
def test_crossing_postings_do_not_deadlock(app, accounts):
    # Half the threads pay anna -> bruno, half bruno -> anna: sorted locking keeps them apart.
    def pay(index: int) -> int:
        payer, payee = (
            (accounts.anna, accounts.bruno) if index % 2 else (accounts.bruno, accounts.anna)
        )
        for _ in range(ATTEMPTS_PER_THREAD):
            ledger.post_transaction(
                [(payee, 10), (accounts.coop, 1), (payer, -11)], description="crossing"
            )
            db.session.commit()
        return ATTEMPTS_PER_THREAD

    assert sum(_in_threads(app, pay, THREADS)) == THREADS * ATTEMPTS_PER_THREAD
    with app.app_context():
        for account_id in (accounts.anna, accounts.bruno, accounts.coop):
            assert cached_balance(account_id) == entries_sum(account_id)
        assert cached_balance(accounts.anna) == cached_balance(accounts.bruno) == -24
        assert cached_balance(accounts.coop) == THREADS * ATTEMPTS_PER_THREAD


@pytest.mark.postgres
def test_posting_holds_a_row_lock_until_commit(app, db_session, accounts):
    if db_session.get_bind().dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's: set TEST_DATABASE_URL to run this")
    ledger.post_transfer(
        payer_account_id=accounts.anna, payee_account_id=accounts.bruno, minutes=5, description=""
    )  # not committed: anna's and bruno's rows stay locked

    def second_posting(_index: int) -> str:
        db.session.execute(text("SET lock_timeout = '300ms'"))
        try:
            ledger.post_transfer(
                payer_account_id=accounts.anna,
                payee_account_id=accounts.coop,
                minutes=5,
                description="",
            )
        except OperationalError as exc:
            return type(exc.orig).__name__
        return "posted"

    assert _in_threads(app, second_posting, 1) == ["LockNotAvailable"]
    db_session.commit()
    assert ledger.get_balance(accounts.anna) == -5


@pytest.mark.postgres
def test_parties_are_locked_in_id_order_with_nothing_held_ahead(app, db_session, accounts):
    # A reversal locks its accounts in id order; a posting whose parties were resolved must too,
    # or the two could each hold one account and wait for the other's.
    engine = db_session.get_bind()
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's: set TEST_DATABASE_URL to run this")
    member = db_session.get(Account, accounts.anna).member_id
    organization = Organization(name="Prima in ordine")
    db_session.add(organization)
    db_session.flush()
    first = Account(
        id="00000000-0000-4000-8000-000000000000",  # before anna's account in id order
        kind="organization",
        organization_id=organization.id,
        credit_limit_minutes=-600,
        balance_minutes=0,
    )
    db_session.add(first)
    db_session.commit()
    locked_row = select(Account.id).where(Account.id == first.id).with_for_update()
    anna_row = select(Account.id).where(Account.id == accounts.anna).with_for_update(nowait=True)

    def post_a_desk() -> int:
        with app.app_context():
            try:
                db.session.execute(text("SET lock_timeout = '20s'"))  # never waits for ever
                parties = ledger.resolve_parties(
                    Party("member_id", member), Party("organization_id", organization.id)
                )
                ledger.post_transfer(
                    payer_account_id=parties.payer.id,
                    payee_account_id=parties.payee.id,
                    minutes=10,
                    description="desk",
                    kind="desk",
                    locked=parties.locked,
                )
                db.session.commit()
                return parties.payer.balance_minutes
            finally:
                db.session.rollback()
                db.remove()

    with engine.connect() as holder, ThreadPoolExecutor(max_workers=1) as pool:
        holder.execute(locked_row)  # another transaction holds the first account
        posting = pool.submit(post_a_desk)
        waiting = text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE '%ledger_accounts%'"
        )
        with engine.connect() as watcher:
            deadline = time.monotonic() + 20
            while not watcher.execute(waiting).scalar() and time.monotonic() < deadline:
                watcher.rollback()
                time.sleep(0.05)
            assert watcher.execute(waiting).scalar() == 1, "the posting never waited"
        with engine.connect() as probe:
            probe.execute(anna_row)  # free: nothing was locked ahead of the first account
            probe.rollback()
        holder.rollback()
        assert posting.result(timeout=30) == -10

"""The database itself guards the ledger: append-only tables, limits, balanced transactions."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from gateway.db import db
from gateway.ledger import services as ledger
from gateway.members.models import new_id


@pytest.fixture
def posted(db_session, accounts):
    """One committed transfer from anna to bruno."""
    txn = ledger.post_transfer(
        payer_account_id=accounts.anna, payee_account_id=accounts.bruno, minutes=60, description=""
    )
    db_session.commit()
    return txn


def _is_postgresql() -> bool:
    return db.engine.dialect.name == "postgresql"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entries SET amount_minutes = amount_minutes * 2",
        "DELETE FROM ledger_entries",
        "UPDATE ledger_transactions SET description = 'edited'",
        "DELETE FROM ledger_transactions",
    ],
)
def test_transactions_and_entries_are_append_only(db_session, posted, statement):
    with pytest.raises(IntegrityError, match="append-only"):
        db_session.execute(text(statement))
    db_session.rollback()
    assert db_session.execute(text("SELECT count(*) FROM ledger_entries")).scalar() == 2
    assert db_session.execute(text("SELECT description FROM ledger_transactions")).scalar() == ""


def test_database_refuses_a_balance_below_the_limit(db_session, accounts):
    with pytest.raises(IntegrityError):
        db_session.execute(
            text("UPDATE ledger_accounts SET balance_minutes = -601 WHERE id = :id"),
            {"id": accounts.anna},
        )
    db_session.rollback()


def test_database_refuses_zero_entries(db_session, accounts):
    txn_id = new_id()
    db_session.execute(
        text(
            "INSERT INTO ledger_transactions (id, kind, description, occurred_at, created_at,"
            " source, metadata) VALUES (:id, 'transfer', '', :now, :now, 'test', '{}')"
        ),
        {"id": txn_id, "now": "2026-01-01 00:00:00+00:00"},
    )
    with pytest.raises(IntegrityError):
        db_session.execute(
            text(
                "INSERT INTO ledger_entries (transaction_id, account_id, amount_minutes,"
                " balance_after_minutes, created_at) VALUES (:t, :a, 0, 0, :now)"
            ),
            {"t": txn_id, "a": accounts.anna, "now": "2026-01-01 00:00:00+00:00"},
        )
    db_session.rollback()


@pytest.mark.postgres
def test_postgresql_refuses_an_unbalanced_transaction_at_commit(db_session, accounts):
    if not _is_postgresql():
        pytest.skip("deferred triggers need PostgreSQL: set TEST_DATABASE_URL to run this")
    txn_id = new_id()
    db_session.execute(
        text(
            "INSERT INTO ledger_transactions (id, kind, description, occurred_at, created_at,"
            " source, metadata) VALUES (:id, 'transfer', '', now(), now(), 'test', '{}')"
        ),
        {"id": txn_id},
    )
    db_session.execute(
        text(
            "INSERT INTO ledger_entries (transaction_id, account_id, amount_minutes,"
            " balance_after_minutes, created_at) VALUES (:t, :a, 5, 5, now())"
        ),
        {"t": txn_id, "a": accounts.bruno},
    )
    with pytest.raises(IntegrityError, match="does not balance"):
        db_session.commit()
    db_session.rollback()
    assert db_session.execute(text("SELECT count(*) FROM ledger_transactions")).scalar() == 0

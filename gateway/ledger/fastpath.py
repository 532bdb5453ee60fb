"""The ledger's SQL that depends on the database: creating, locking and writing accounts' rows.

Why this module exists. A posting locks its accounts, reads their balances, writes a transaction,
its entries and the new balances, and holds the locks until the caller commits: every round trip
and every millisecond of Python on that path is spent with other postings waiting. The
transaction POST is the gateway's busiest write, so this path is written for speed, here and
nowhere else; the rules (which accounts, in which order, what is refused) stay in ``services``.

- PostgreSQL locks rows: the accounts are read ``FOR UPDATE`` in id order (one order for every
  posting, so two never wait on each other), and the three writes are one statement
  (data-modifying CTEs), one round trip where the unit of work would take three.
- SQLite ignores ``FOR UPDATE`` and has one write lock for the whole database. A write that
  changes nothing takes it before the accounts are read (what ``BEGIN IMMEDIATE`` would do), so
  the balances read stay current until commit; it also makes pysqlite open a transaction, so a
  later SAVEPOINT nests in it (one opened outside a transaction would COMMIT when released). A
  statement is no round trip there: the writes stay three plain statements.
- Both write with Core statements rather than the unit of work, which cost more than the SQL on
  this path, and then hand back the objects as a flush followed by a read would leave them:
  loaded, with their entries, the balances current, and nothing pending in the session
  (``set_committed_value`` and ``add_as_loaded``). A caller cannot tell the difference.
- Accounts are created with ``INSERT ... ON CONFLICT DO NOTHING`` (each dialect has its own), so
  two requests creating one account both succeed.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import (
    CompoundSelect,
    Insert,
    Integer,
    Select,
    String,
    Update,
    bindparam,
    case,
    insert,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from gateway.db import add_as_loaded, table_of
from gateway.ledger.models import Account, Entry, Transaction
from gateway.members.models import Member

__all__ = ["Leg", "insert_account_if_missing", "lock_accounts", "lock_named_accounts", "write"]


class Leg(NamedTuple):
    """One entry of a posting: the account, the minutes it moves, and its balance after."""

    account_id: str
    minutes: int
    balance_after: int


def _is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def insert_account_if_missing(session: Session, values: dict[str, Any]) -> None:
    """Insert an account row unless one with the same owner (or id) exists."""
    dialect_insert = sqlite.insert if _is_sqlite(session) else postgresql.insert
    session.execute(dialect_insert(Account).values(**values).on_conflict_do_nothing())


# -- locks --------------------------------------------------------------------------------------


def _take_sqlite_write_lock(session: Session, *criteria: Any) -> None:
    session.execute(
        update(Account)
        .where(*criteria)
        .values(balance_minutes=Account.balance_minutes)
        .execution_options(synchronize_session=False)
    )


def _named(
    member_ids: Sequence[str], organization_ids: Sequence[str], account_ids: Sequence[str]
) -> Any:
    return or_(
        *(
            column.in_(values)
            for column, values in (
                (Account.member_id, member_ids),
                (Account.organization_id, organization_ids),
                (Account.id, account_ids),
            )
            if values
        )
    )


@lru_cache(maxsize=16)
def _lock_named_statements(
    members: int, organizations: int, accounts: int
) -> tuple[Update, Select[Account, str]]:
    # Built once per shape, with one bound parameter per id: a list in IN is rendered again on
    # every call. The first statement takes SQLite's write lock.
    def params(prefix: str, count: int) -> list[Any]:
        return [bindparam(f"{prefix}{i}") for i in range(count)]

    named = _named(params("m", members), params("o", organizations), params("a", accounts))
    sqlite_write_lock = (
        update(Account)
        .where(named)
        .values(balance_minutes=Account.balance_minutes)
        .execution_options(synchronize_session=False)
    )
    read = (
        select(Account, Member.status)
        .outerjoin(Member, Member.id == Account.member_id)
        .where(named)
        .order_by(Account.id)
        .with_for_update(of=Account)
        .execution_options(populate_existing=True)
    )
    return sqlite_write_lock, read


def lock_named_accounts(
    session: Session,
    member_ids: Sequence[str],
    organization_ids: Sequence[str],
    account_ids: Sequence[str],
) -> list[tuple[Account, str | None]]:
    """Lock and read, in id order, the accounts of these members and organizations and these
    accounts, each with its member's status (None for an organization's or a clearing's)."""
    write_lock, read = _lock_named_statements(
        len(member_ids), len(organization_ids), len(account_ids)
    )
    params = {
        f"{prefix}{i}": value
        for prefix, values in (("m", member_ids), ("o", organization_ids), ("a", account_ids))
        for i, value in enumerate(values)
    }
    if _is_sqlite(session):
        session.execute(write_lock, params)
    return [(account, status) for account, status in session.execute(read, params)]


def lock_accounts(session: Session, account_ids: Sequence[str]) -> list[Account]:
    """Lock and read these accounts (those that exist), in id order."""
    if _is_sqlite(session):
        _take_sqlite_write_lock(session, Account.id.in_(account_ids))
    return list(
        session.scalars(
            select(Account)
            .where(Account.id.in_(account_ids))
            .order_by(Account.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )


# -- the posting's writes -----------------------------------------------------------------------

_TRANSACTIONS, _ENTRIES, _ACCOUNTS = table_of(Transaction), table_of(Entry), table_of(Account)
_INSERT_TRANSACTION = insert(_TRANSACTIONS)
_INSERT_ENTRIES = insert(_ENTRIES).returning(_ENTRIES.c.id, sort_by_parameter_order=True)
_SET_BALANCE = (
    update(_ACCOUNTS)
    .where(_ACCOUNTS.c.id == bindparam("b_id"))
    .values(balance_minutes=bindparam("b_balance"))
)


@lru_cache(maxsize=8)
def _posting_in_one_statement(legs: int) -> Insert:
    """PostgreSQL: the three writes of a posting with ``legs`` entries as one statement.

    The transaction and the balances are written by data-modifying CTEs, the entries by the
    main insert (their foreign key to the transaction is checked at the statement's end).
    Parameters: ``t_<column>`` for the transaction, and per leg ``a<i>`` (account), ``m<i>``
    (minutes), ``b<i>`` (balance after); returns (entry id, account id) rows.
    """
    transactions, entries, accounts = _TRANSACTIONS, _ENTRIES, _ACCOUNTS
    transaction = insert(transactions).values(
        {c.key: bindparam(f"t_{c.key}", type_=c.type) for c in transactions.c}
    )
    # CASE rather than a VALUES list: SQLAlchemy caches the compiled form of this one.
    balances = (
        update(accounts)
        .where(accounts.c.id.in_([bindparam(f"a{i}", type_=String()) for i in range(legs)]))
        .values(
            balance_minutes=case(
                *((accounts.c.id == bindparam(f"a{i}"), bindparam(f"b{i}")) for i in range(legs))
            )
        )
    )
    # INSERT ... SELECT rather than a multi-row VALUES, for the same reason.
    legs_rows: CompoundSelect[Any] = union_all(
        *(
            select(
                bindparam("t_id", type_=String()),
                bindparam(f"a{i}"),
                bindparam(f"m{i}", type_=Integer()),
                bindparam(f"b{i}"),
                bindparam("t_created_at"),
            )
            for i in range(legs)
        )
    )
    columns = ("transaction_id", "account_id", "amount_minutes", "balance_after_minutes")
    return (
        insert(entries)
        .from_select([*columns, "created_at"], legs_rows)
        .returning(entries.c.id, entries.c.account_id)
        .add_cte(transaction.cte("new_transaction"), balances.cte("new_balances"))
    )


def _entry_ids(session: Session, columns: dict[str, Any], legs: Sequence[Leg]) -> list[int]:
    """Write the transaction, its entries and the balances; the entries' ids, in legs' order."""
    if _is_sqlite(session):
        session.execute(_INSERT_TRANSACTION, columns)
        ids = session.scalars(
            _INSERT_ENTRIES,
            [
                {
                    "transaction_id": columns["id"],
                    "account_id": leg.account_id,
                    "amount_minutes": leg.minutes,
                    "balance_after_minutes": leg.balance_after,
                    "created_at": columns["created_at"],
                }
                for leg in legs
            ],
        ).all()
        session.execute(
            _SET_BALANCE, [{"b_id": leg.account_id, "b_balance": leg.balance_after} for leg in legs]
        )
        return list(ids)
    params = {f"t_{name}": value for name, value in columns.items()}
    for i, leg in enumerate(legs):
        params |= {f"a{i}": leg.account_id, f"m{i}": leg.minutes, f"b{i}": leg.balance_after}
    statement = _posting_in_one_statement(len(legs))
    written = {account: entry for entry, account in session.execute(statement, params)}
    return [written[leg.account_id] for leg in legs]


def write(
    session: Session, values: dict[str, Any], legs: Sequence[Leg], accounts: dict[str, Account]
) -> Transaction:
    """Insert the transaction (``values``: its attributes) and its entries, and move the locked
    ``accounts``' balances; return the transaction as loaded, with its entries."""
    columns = {**values, "metadata": values["meta"]}  # the column behind ``meta``
    del columns["meta"]
    ids = _entry_ids(session, columns, legs)
    for leg in legs:
        set_committed_value(accounts[leg.account_id], "balance_minutes", leg.balance_after)
    txn = Transaction(**values)
    # As loaded, not assigned: assigning fired the backref and history events of every entry.
    loaded = [
        Entry(
            id=entry_id,
            transaction_id=values["id"],
            account_id=leg.account_id,
            amount_minutes=leg.minutes,
            balance_after_minutes=leg.balance_after,
            created_at=values["created_at"],
        )
        for entry_id, leg in zip(ids, legs, strict=True)
    ]
    set_committed_value(txn, "entries", loaded)
    add_as_loaded(session, *loaded, txn)
    return txn

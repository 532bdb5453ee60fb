"""The ledger's services: accounts, postings, reversals, balances and statements.

Unit of work: every function works in the caller's session (``db.session``) and never commits.
Postings and reversals write their rows before they return (so their constraints have spoken);
the caller — a view, a job — commits, or rolls back on error. A refused posting raises a
``LedgerError`` and leaves the caller's transaction as it was: every check runs before the first
write, and the writes a unique constraint may still refuse (an import, a reversal) run in a
SAVEPOINT.

Concurrency: the accounts of a posting are locked before their balances are read — ``SELECT ...
FOR UPDATE`` in sorted id order on PostgreSQL (no deadlocks between postings), and on SQLite a
first no-op write that takes the database's single write lock (BEGIN IMMEDIATE semantics). The
cached balance is then written in the same transaction as the entries, so no update is lost and
no limit is crossed. Locks are held until the caller commits: commit soon. A caller that must
read members' accounts anyway (the API resolving a posting's parties) locks them in that same
read with ``lock_member_accounts``; the next posting in that transaction uses those fresh reads
instead of reading the accounts again (later ones read them again, under the locks still held).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

from flask import current_app
from sqlalchemy import (
    Insert,
    Integer,
    Select,
    String,
    bindparam,
    case,
    event,
    insert,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, SessionTransaction, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from gateway.db import add_as_loaded, db, utcnow
from gateway.ledger.errors import (
    AccountNotFound,
    AlreadyReversed,
    CreditLimitExceeded,
    DuplicateExternal,
    InvalidCursor,
    TransactionNotFound,
    UnbalancedTransaction,
)
from gateway.ledger.events import transaction_posted, transaction_reversed
from gateway.ledger.models import (
    TRANSACTION_KINDS,
    Account,
    Entry,
    Organization,
    Transaction,
)
from gateway.members.models import Member, new_id

__all__ = [
    "DEFAULT_CREDIT_LIMIT_MINUTES",
    "StatementLine",
    "account_for_member",
    "account_for_organization",
    "clearing_account",
    "create_organization",
    "find_by_external",
    "find_member_account",
    "get_account",
    "get_balance",
    "get_transaction",
    "list_organizations",
    "lock_member_accounts",
    "post_transaction",
    "post_transfer",
    "reversal_of",
    "reverse_transaction",
    "statement",
]

DEFAULT_CREDIT_LIMIT_MINUTES = -600
MAX_STATEMENT_PAGE = 200

# The posting's writes as Core statements, built once (see ``_write``).
_INSERT_TRANSACTION = insert(Transaction.__table__)
_INSERT_ENTRIES = insert(Entry.__table__).returning(
    Entry.__table__.c.id, sort_by_parameter_order=True
)
_SET_BALANCE = (
    update(Account.__table__)
    .where(Account.__table__.c.id == bindparam("b_id"))
    .values(balance_minutes=bindparam("b_balance"))
)


@lru_cache(maxsize=8)
def _posting_in_one_statement(legs: int) -> Insert:
    """PostgreSQL: the three writes of a posting with ``legs`` entries as one statement.

    The transaction and the balances are written by data-modifying CTEs, the entries by the
    main insert (their foreign key to the transaction is checked at the statement's end). Each
    round trip saved is one fewer while the accounts' locks are held. Parameters: ``t_<column>``
    for the transaction, and per leg ``a<i>`` (account), ``m<i>`` (minutes), ``b<i>`` (balance
    after); returns (entry id, account id) rows.
    """
    transactions, entries = Transaction.__table__, Entry.__table__
    accounts = Account.__table__
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
    legs_rows = union_all(
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


# -- accounts -----------------------------------------------------------------------------------


def default_credit_limit() -> int | None:
    """The credit limit new member and organization accounts get (config, default -600)."""
    value = current_app.config.get(
        "LEDGER_DEFAULT_CREDIT_LIMIT_MINUTES", DEFAULT_CREDIT_LIMIT_MINUTES
    )
    return None if value is None or value == "" else int(value)


def _insert_if_missing(**values: Any) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: two requests creating one account both succeed."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = {"id": new_id(), "balance_minutes": 0, "created_at": utcnow(), **values}
    db.session.execute(insert(Account).values(**values).on_conflict_do_nothing())


def _account_where(*criteria: Any) -> Account | None:
    return db.session.scalar(select(Account).where(*criteria))


def account_for_member(member_id: str) -> Account:
    """The member's account, created on demand with the default credit limit."""
    account = _account_where(Account.member_id == member_id)
    if account is not None:
        return account
    if db.session.get(Member, member_id) is None:
        raise AccountNotFound(member_id, f"There is no member {member_id}.")
    _insert_if_missing(
        kind="member", member_id=member_id, credit_limit_minutes=default_credit_limit()
    )
    return db.session.scalars(select(Account).where(Account.member_id == member_id)).one()


def find_member_account(member_id: str) -> Account | None:
    """The member's account if it exists (unlike ``account_for_member``, never creates one)."""
    return _account_where(Account.member_id == member_id)


def account_for_organization(org_id: str) -> Account:
    """The organization's account, created on demand with the default credit limit."""
    account = _account_where(Account.organization_id == org_id)
    if account is not None:
        return account
    if db.session.get(Organization, org_id) is None:
        raise AccountNotFound(org_id, f"There is no organization {org_id}.")
    _insert_if_missing(
        kind="organization", organization_id=org_id, credit_limit_minutes=default_credit_limit()
    )
    return db.session.scalars(select(Account).where(Account.organization_id == org_id)).one()


def clearing_account(platform_id: str) -> Account:
    """The clearing account of a platform (mirrors what its members hold there); no limit."""
    if not platform_id or len(platform_id) > 36:
        raise ValueError("platform_id must be a platform's id (1 to 36 characters)")
    account = _account_where(Account.platform_id == platform_id)
    if account is not None:
        return account
    _insert_if_missing(kind="clearing", platform_id=platform_id, credit_limit_minutes=None)
    return db.session.scalars(select(Account).where(Account.platform_id == platform_id)).one()


def get_account(account_id: str) -> Account:
    """The account with this id; raises ``AccountNotFound``."""
    account = db.session.get(Account, account_id)
    if account is None:
        raise AccountNotFound(account_id)
    return account


def get_balance(account_id: str) -> int:
    """The account's balance in minutes (the cached sum of its entries)."""
    account = db.session.get(Account, account_id, populate_existing=True)
    if account is None:
        raise AccountNotFound(account_id)
    return account.balance_minutes


# -- organizations ------------------------------------------------------------------------------


def create_organization(
    *,
    name: str,
    kind: str = "cooperative",
    municipio: int | None = None,
    credit_limit_minutes: int | Literal["default"] | None = "default",
) -> Organization:
    """A new organization and its account (None: no limit); flushed, not committed."""
    organization = Organization(name=name, kind=kind, municipio=municipio)
    db.session.add(organization)
    db.session.flush()
    limit = default_credit_limit() if credit_limit_minutes == "default" else credit_limit_minutes
    db.session.add(
        Account(
            kind="organization",
            organization_id=organization.id,
            credit_limit_minutes=limit,
            balance_minutes=0,
        )
    )
    db.session.flush()
    return organization


def list_organizations() -> list[Organization]:
    """Every organization, by name."""
    return list(
        db.session.scalars(select(Organization).order_by(Organization.name, Organization.id))
    )


# -- postings -----------------------------------------------------------------------------------


def _validate_entries(entries: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    checked = [(str(account_id), amount) for account_id, amount in entries]
    if len(checked) < 2:
        raise UnbalancedTransaction("A transaction needs at least two entries.")
    for account_id, amount in checked:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise UnbalancedTransaction(
                f"The amount for account {account_id} is not whole minutes."
            )
        if amount == 0:
            raise UnbalancedTransaction(f"The amount for account {account_id} is zero.")
    if len({account_id for account_id, _ in checked}) != len(checked):
        raise UnbalancedTransaction("An account appears more than once in the transaction.")
    total = sum(amount for _, amount in checked)
    if total != 0:
        raise UnbalancedTransaction(f"The entries sum to {total} minutes instead of zero.")
    return checked


# Accounts locked and read by ``lock_member_accounts`` and not yet used by a posting: id -> the
# account. Used once: a posting's balances could be undone by a rolled-back SAVEPOINT.
_LOCKED_KEY = "gateway.ledger.locked"


@event.listens_for(Session, "after_transaction_end")
def _forget_locks(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction: its locks are gone
        session.info.pop(_LOCKED_KEY, None)


def _take_write_lock_sqlite(*criteria: Any) -> None:
    """SQLite ignores FOR UPDATE; a write is what takes its one write lock.

    Taken before reading, it makes the balances read next current until the caller commits.
    The write also makes pysqlite open a real transaction, so a later SAVEPOINT nests in it (one
    opened outside a transaction would COMMIT when released).
    """
    db.session.execute(
        update(Account)
        .where(*criteria)
        .values(balance_minutes=Account.balance_minutes)
        .execution_options(synchronize_session=False)
    )


@lru_cache(maxsize=8)
def _lock_members_statement(members: int) -> Select[tuple[Account, str]]:
    """``lock_member_accounts``'s read for that many members, built once: one bound parameter
    ``m<i>`` each, so no SQL is rendered again per call (as a list in IN would be)."""
    return (
        select(Account, Member.status)
        .join(Member, Member.id == Account.member_id)
        .where(Account.member_id.in_([bindparam(f"m{i}") for i in range(members)]))
        .order_by(Account.id)
        .with_for_update(of=Account)
        .execution_options(populate_existing=True)
    )


def lock_member_accounts(member_ids: Iterable[str]) -> dict[str, tuple[Account, bool]]:
    """Lock the accounts of these members and read them, with whether each member is active.

    One statement on PostgreSQL (two on SQLite) where resolving a posting's parties and then
    posting would take two reads. Members without an account yet are left out (their first
    posting creates it). The accounts stay locked until the caller's transaction ends; the next
    posting touching them uses these reads.
    """
    ids = sorted(set(member_ids))
    if not ids:
        return {}
    session = db.session
    if session.get_bind().dialect.name == "sqlite":
        _take_write_lock_sqlite(Account.member_id.in_(ids))
    rows = session.execute(
        _lock_members_statement(len(ids)), {f"m{i}": member for i, member in enumerate(ids)}
    ).all()
    locked = session.info.setdefault(_LOCKED_KEY, {})
    found = {}
    for account, status in rows:
        locked[account.id] = account
        found[account.member_id] = (account, status == "active")
    return found


def _lock_accounts(account_ids: Iterable[str]) -> dict[str, Account]:
    """Lock the accounts (sorted ids: a consistent order) and read their current rows."""
    session = db.session
    locked: dict[str, Account] = session.info.get(_LOCKED_KEY, {})
    wanted = set(account_ids)
    accounts = {a: locked.pop(a) for a in wanted if a in locked}
    ids = sorted(wanted - accounts.keys())
    if not ids:
        return accounts
    if session.get_bind().dialect.name == "sqlite":
        _take_write_lock_sqlite(Account.id.in_(ids))
    rows = session.scalars(
        select(Account)
        .where(Account.id.in_(ids))
        .order_by(Account.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    accounts |= {account.id: account for account in rows}
    for account_id in ids:
        if account_id not in accounts:
            raise AccountNotFound(account_id)
    return accounts


def _check_limits(accounts: dict[str, Account], entries: list[tuple[str, int]]) -> None:
    for account_id, amount in entries:
        account = accounts[account_id]
        limit = account.credit_limit_minutes
        # Only debits are refused: a credit never takes an account further below its limit.
        if amount < 0 and limit is not None and account.balance_minutes + amount < limit:
            raise CreditLimitExceeded(account_id, account.balance_minutes, limit, amount)


def _post(
    entries: Sequence[tuple[str, int]],
    *,
    description: str,
    kind: str,
    occurred_at: datetime | None,
    source: str,
    external: tuple[str, str] | None,
    created_by_client_id: str | None,
    metadata: dict[str, Any] | None,
    reversal_of: str | None = None,
) -> Transaction:
    if kind not in TRANSACTION_KINDS:
        raise ValueError(
            f"unknown transaction kind {kind!r}; known: {', '.join(TRANSACTION_KINDS)}"
        )
    if occurred_at is not None and occurred_at.tzinfo is None:
        raise ValueError("occurred_at must be timezone-aware")
    if external is not None:
        platform_id, remote_id = external
        if not platform_id or not remote_id:
            raise ValueError("external must be (platform_id, remote_id), both non-empty")
    checked = _validate_entries(entries)
    session = db.session
    accounts = _lock_accounts(account_id for account_id, _ in checked)
    # Checked under the locks: a concurrent import or reversal of the same thing touches the same
    # accounts, so it has committed by now (and is seen) or waits for us.
    if external is not None:
        existing = find_by_external(*external)
        if existing is not None:
            raise DuplicateExternal(existing.id)
    if reversal_of is not None:
        reversal = _reversal_of(reversal_of)
        if reversal is not None:
            raise AlreadyReversed(
                reversal_of, f"Transaction {reversal_of} was reversed already by {reversal.id}."
            )
    _check_limits(accounts, checked)
    now = utcnow()
    values = {
        "id": new_id(),
        "kind": kind,
        "description": description,
        "occurred_at": occurred_at.astimezone(UTC) if occurred_at is not None else now,
        "created_at": now,
        "reversal_of": reversal_of,
        "source": source,
        "external_platform_id": external[0] if external else None,
        "external_id": external[1] if external else None,
        "created_by_client_id": created_by_client_id,
        "meta": dict(metadata or {}),
    }
    if external is None and reversal_of is None:
        # Nothing here can be refused by a constraint: every check ran under the locks. Without
        # a SAVEPOINT the posting takes two round trips fewer while it holds them.
        return _write(values, accounts, checked)
    try:
        with session.begin_nested():
            return _write(values, accounts, checked)
    except IntegrityError:
        # The unique constraints decide races the checks above could not see (another session
        # inserted the same external id or reversal without touching these accounts' locks).
        if external is not None and (existing := find_by_external(*external)) is not None:
            raise DuplicateExternal(existing.id) from None
        if reversal_of is not None and (reversal := _reversal_of(reversal_of)) is not None:
            raise AlreadyReversed(
                reversal_of, f"Transaction {reversal_of} was reversed already by {reversal.id}."
            ) from None
        raise


def _write(
    values: dict[str, Any], accounts: dict[str, Account], entries: list[tuple[str, int]]
) -> Transaction:
    """Insert the transaction and its entries and move the cached balances (locks held).

    Bulk statements rather than the unit of work, which cost more than the SQL on this path.
    The objects returned are then put in the session as loaded rows (no further SQL), with
    ``entries`` loaded, exactly as a flush followed by a query would leave them.
    """
    session = db.session
    balances = {a: accounts[a].balance_minutes + amount for a, amount in entries}
    rows = [
        {
            "transaction_id": values["id"],
            "account_id": account_id,
            "amount_minutes": amount,
            "balance_after_minutes": balances[account_id],
            "created_at": values["created_at"],
        }
        for account_id, amount in entries
    ]
    columns = {**values, "metadata": values["meta"]}  # the column behind ``meta``
    del columns["meta"]
    if session.get_bind().dialect.name == "postgresql":
        params = {f"t_{name}": value for name, value in columns.items()}
        for i, row in enumerate(rows):
            params |= {
                f"a{i}": row["account_id"],
                f"m{i}": row["amount_minutes"],
                f"b{i}": row["balance_after_minutes"],
            }
        statement = _posting_in_one_statement(len(rows))
        written = {account: entry for entry, account in session.execute(statement, params)}
        ids = [written[row["account_id"]] for row in rows]
    else:
        session.execute(_INSERT_TRANSACTION, columns)
        ids = session.scalars(_INSERT_ENTRIES, rows).all()
        session.execute(_SET_BALANCE, [{"b_id": a, "b_balance": b} for a, b in balances.items()])
    for account_id, balance in balances.items():
        set_committed_value(accounts[account_id], "balance_minutes", balance)
    txn = Transaction(**values)
    # As loaded, not assigned: assigning fired the backref and history events of every entry.
    loaded = [Entry(id=entry_id, **row) for entry_id, row in zip(ids, rows, strict=True)]
    set_committed_value(txn, "entries", loaded)
    add_as_loaded(session, *loaded, txn)
    return txn


def post_transaction(
    entries: Sequence[tuple[str, int]],
    *,
    description: str,
    kind: str = "transfer",
    occurred_at: datetime | None = None,
    source: str = "api",
    external: tuple[str, str] | None = None,
    created_by_client_id: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Transaction:
    """Post balanced ``(account_id, minutes)`` entries as one transaction; flushed, not committed.

    Raises ``UnbalancedTransaction``, ``AccountNotFound``, ``CreditLimitExceeded`` or (for an
    ``external=(platform_id, remote_id)`` seen before) ``DuplicateExternal``. Sends
    ``transaction_posted`` inside the open transaction.
    """
    if kind == "reversal":
        raise ValueError("reversals are posted by reverse_transaction()")
    txn = _post(
        entries,
        description=description,
        kind=kind,
        occurred_at=occurred_at,
        source=source,
        external=external,
        created_by_client_id=created_by_client_id,
        metadata=metadata,
    )
    transaction_posted.send(None, transaction=txn)
    return txn


def post_transfer(
    *,
    payer_account_id: str,
    payee_account_id: str,
    minutes: int,
    description: str,
    kind: str = "transfer",
    occurred_at: datetime | None = None,
    source: str = "api",
    external: tuple[str, str] | None = None,
    created_by_client_id: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Transaction:
    """Move ``minutes`` (> 0) from payer to payee: ``post_transaction`` with two entries."""
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes <= 0:
        raise UnbalancedTransaction(
            f"A transfer moves a positive whole number of minutes, not {minutes!r}."
        )
    return post_transaction(
        [(payer_account_id, -minutes), (payee_account_id, minutes)],
        description=description,
        kind=kind,
        occurred_at=occurred_at,
        source=source,
        external=external,
        created_by_client_id=created_by_client_id,
        metadata=metadata,
    )


def _reversal_of(transaction_id: str) -> Transaction | None:
    return db.session.scalar(select(Transaction).where(Transaction.reversal_of == transaction_id))


def reversal_of(transaction_id: str) -> Transaction | None:
    """The reversal of this transaction, if it was reversed."""
    return _reversal_of(transaction_id)


def reverse_transaction(
    transaction_id: str,
    *,
    reason: str,
    source: str = "api",
    external: tuple[str, str] | None = None,
    created_by_client_id: str | None = None,
) -> Transaction:
    """Post the exact opposite of a transaction; flushed, not committed.

    Raises ``TransactionNotFound``; ``AlreadyReversed`` for a reversal or a transaction reversed
    before; ``CreditLimitExceeded`` when undoing would take an account below its limit;
    ``DuplicateExternal``. Sends ``transaction_reversed`` with the reversal.
    """
    original = db.session.get(Transaction, transaction_id)
    if original is None:
        raise TransactionNotFound(transaction_id)
    if original.kind == "reversal":
        raise AlreadyReversed(
            transaction_id,
            f"Transaction {transaction_id} is itself a reversal; post a new transaction instead.",
        )
    txn = _post(
        [(entry.account_id, -entry.amount_minutes) for entry in original.entries],
        description=reason,
        kind="reversal",
        occurred_at=None,
        source=source,
        external=external,
        created_by_client_id=created_by_client_id,
        metadata={"reason": reason},
        reversal_of=transaction_id,
    )
    transaction_reversed.send(None, transaction=txn)
    return txn


def find_by_external(platform_id: str, remote_id: str) -> Transaction | None:
    """The transaction imported from this remote transfer, if any."""
    return db.session.scalar(
        select(Transaction).where(
            Transaction.external_platform_id == platform_id, Transaction.external_id == remote_id
        )
    )


def get_transaction(transaction_id: str) -> Transaction:
    """The transaction with this id; raises ``TransactionNotFound``."""
    txn = db.session.get(Transaction, transaction_id)
    if txn is None:
        raise TransactionNotFound(transaction_id)
    return txn


# -- statements ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatementLine:
    """One entry of an account's statement, with its transaction's facts."""

    entry_id: int
    transaction_id: str
    kind: str
    description: str
    amount_minutes: int
    balance_after_minutes: int
    counterparty_account_ids: list[str]
    occurred_at: datetime
    created_at: datetime
    reversal_of: str | None


def _encode_cursor(entry_id: int) -> str:
    return base64.urlsafe_b64encode(f"e1:{entry_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = raw.partition(":")
        if prefix != "e1" or not value.isdigit():
            raise InvalidCursor
        return int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor from None


def statement(
    account_id: str, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[StatementLine], str | None]:
    """A page of the account's entries, newest first, and the cursor of the next page (or None).

    Pages follow entry ids, which grow in posting order per account: entries posted while a
    client pages appear on the first page again, never inside or between later ones.
    """
    if not 1 <= limit <= MAX_STATEMENT_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_STATEMENT_PAGE}")
    get_account(account_id)
    query = (
        select(Entry)
        .where(Entry.account_id == account_id)
        .options(selectinload(Entry.transaction))
        .order_by(Entry.id.desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        query = query.where(Entry.id < _decode_cursor(cursor))
    rows = list(db.session.scalars(query))
    page = rows[:limit]
    lines = [
        StatementLine(
            entry_id=entry.id,
            transaction_id=entry.transaction_id,
            kind=entry.transaction.kind,
            description=entry.transaction.description,
            amount_minutes=entry.amount_minutes,
            balance_after_minutes=entry.balance_after_minutes,
            counterparty_account_ids=[
                other.account_id
                for other in entry.transaction.entries
                if other.account_id != account_id
            ],
            occurred_at=entry.transaction.occurred_at,
            created_at=entry.created_at,
            reversal_of=entry.transaction.reversal_of,
        )
        for entry in page
    ]
    next_cursor = _encode_cursor(page[-1].id) if len(rows) > limit else None
    return lines, next_cursor

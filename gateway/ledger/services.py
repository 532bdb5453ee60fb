"""The ledger's services: accounts, postings, reversals, balances and statements.

Unit of work: every function works in the caller's session (``db.session``) and never commits.
Postings and reversals write their rows before they return (so their constraints have spoken);
the caller — a view, a job — commits, or rolls back on error. A refused posting raises a
``LedgerError`` and leaves the caller's transaction as it was: every check runs before the first
write, and the writes a unique constraint may still refuse (an import, a reversal) run in a
SAVEPOINT.

Concurrency: a posting locks its accounts before it reads their balances, in one statement and
in id order, so two postings never wait on each other in a cycle (a first posting also locks the
account it has just created, which no one else can hold). The cached balance is then
written in the same transaction as the entries, so no update is lost and no limit is crossed.
Locks are held until the caller commits: commit soon. A caller that names a transfer's parties
(the API) resolves them with ``resolve_parties``, which locks their accounts as it reads them and
hands them on: ``post_transfer(..., locked=parties.locked)`` does not read them again. How each
database locks and writes is in ``fastpath``; the rules are here.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, SessionTransaction, selectinload

from gateway.db import db, utcnow
from gateway.ledger import fastpath
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
    "LockedAccounts",
    "Parties",
    "Party",
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
    "post_transaction",
    "post_transfer",
    "resolve_parties",
    "reversal_of",
    "reverse_transaction",
    "statement",
]

DEFAULT_CREDIT_LIMIT_MINUTES = -600
MAX_STATEMENT_PAGE = 200

# What a desk and help move between: (the payer's account kind, the payee's), and the refusal.
# The other kinds move minutes between any accounts.
_KIND_PARTIES = {
    "desk": (("member", "organization"), "A desk is paid by a member to an organization."),
    "help": (
        ("member", "member"),
        "Help is paid by the member who was helped to the one who helped.",
    ),
}


# -- accounts -----------------------------------------------------------------------------------


def default_credit_limit() -> int | None:
    """The credit limit new member and organization accounts get (config, default -600)."""
    value = current_app.config.get(
        "LEDGER_DEFAULT_CREDIT_LIMIT_MINUTES", DEFAULT_CREDIT_LIMIT_MINUTES
    )
    return None if value is None or value == "" else int(value)


def _insert_if_missing(**values: Any) -> None:
    """Create the account unless it exists: two requests creating one account both succeed."""
    values = {"id": new_id(), "balance_minutes": 0, "created_at": utcnow(), **values}
    fastpath.insert_account_if_missing(db.session, values)


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


# -- parties ------------------------------------------------------------------------------------


PartyField = Literal["member_id", "organization_id", "account_id"]


class Party(NamedTuple):
    """Who pays or is paid, as a client names them: which id, and its value."""

    field: PartyField
    id: str


class LockedAccounts:
    """Accounts read under their locks, for the next posting in the same database transaction.

    A posting given them (``locked=``) neither locks nor reads them again. They are good only in
    the transaction that took the locks (after it, another may have moved the balances: the
    posting then reads them again), and each serves one posting (a posting's SAVEPOINT rolled
    back would leave its balance on the object, not in the row).
    """

    def __init__(self, session: Session, rows: Iterable[tuple[Account, str | None]]) -> None:
        self._transaction: SessionTransaction | None = session.get_transaction()
        self._unused: dict[str, Account] = {}
        self._named: dict[tuple[str, str], tuple[Account, str | None]] = {}
        for account, member_status in rows:
            self._unused[account.id] = account
            read = (account, member_status)
            self._named["account_id", account.id] = read
            if account.member_id is not None:
                self._named["member_id", account.member_id] = read
            elif account.organization_id is not None:
                self._named["organization_id", account.organization_id] = read

    def find(self, party: Party) -> tuple[Account, str | None] | None:
        """The account this party names, with its member's status, if it was read."""
        return self._named.get(party)

    def take(self, session: Session, account_ids: Iterable[str]) -> dict[str, Account]:
        """Those of these accounts still good for a posting in ``session``; each given once."""
        if session.get_transaction() is not self._transaction:
            self._unused.clear()
        return {a: self._unused.pop(a) for a in account_ids if a in self._unused}


@dataclass(frozen=True)
class Parties:
    """A transfer's payer and payee, checked, and their accounts locked."""

    payer: Account
    payee: Account
    locked: LockedAccounts


def _ensure_active(side: str, member_id: str, status: str | None = None) -> None:
    if status is None:
        member = db.session.get(Member, member_id)
        status = member.status if member is not None else None
    if status != "active":
        raise InvalidParty((side, "member_id"), f"There is no active member {member_id}.")


def _party_account(side: str, party: Party, locked: LockedAccounts) -> Account:
    found = locked.find(party)
    account, status = found if found is not None else (None, None)
    field, named = party
    if field == "member_id":
        _ensure_active(side, named, status)
        # Without an account this is the member's first posting: it is created.
        return account if account is not None else account_for_member(named)
    if field == "organization_id":
        if account is not None:
            return account
        try:
            return account_for_organization(named)
        except AccountNotFound as exc:
            raise InvalidParty((side, field), str(exc)) from None
    if account is None:
        raise InvalidParty((side, field), str(AccountNotFound(named)))
    if account.kind == "clearing":
        # Clearing accounts mirror the partner platforms: only the sync engine posts to them.
        raise InvalidParty((side, field), "Clearing accounts cannot be used here.")
    if account.member_id is not None:
        _ensure_active(side, account.member_id, status)
    return account


def resolve_parties(payer: Party, payee: Party) -> Parties:
    """The accounts a client names as a transfer's payer and payee, checked and locked.

    Raises ``InvalidParty`` (naming the side and the field) for a member who is gone or not
    active, an unknown organization or account, a clearing account, and one account on both
    sides. Existing accounts are locked and read in one statement, in id order, as a posting
    would lock them; a member's or an organization's first posting creates their account.
    """
    named = {"payer": payer, "payee": payee}
    ids: dict[str, list[str]] = {"member_id": [], "organization_id": [], "account_id": []}
    for field, value in sorted({payer, payee}):
        if field not in ids:
            raise ValueError(f"a party names a member_id, organization_id or account_id: {field}")
        ids[field].append(value)
    session = db.session
    rows = fastpath.lock_named_accounts(
        session, ids["member_id"], ids["organization_id"], ids["account_id"]
    )
    locked = LockedAccounts(session, rows)
    # Sides resolved in one global order: two postings creating the same two accounts in
    # opposite orders would wait on each other's inserts.
    accounts = {
        side: _party_account(side, named[side], locked)
        for side in sorted(named, key=named.__getitem__)
    }
    if accounts["payer"].id == accounts["payee"].id:
        raise InvalidParty(("payee",), "The payer and the payee must be different accounts.")
    return Parties(accounts["payer"], accounts["payee"], locked)


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


def _lock_accounts(account_ids: Iterable[str], locked: LockedAccounts | None) -> dict[str, Account]:
    """The accounts, locked and read (those in ``locked`` as they were read)."""
    session = db.session
    wanted = set(account_ids)
    accounts = locked.take(session, wanted) if locked is not None else {}
    ids = sorted(wanted - accounts.keys())
    if not ids:
        return accounts
    accounts |= {account.id: account for account in fastpath.lock_accounts(session, ids)}
    for account_id in ids:
        if account_id not in accounts:
            raise AccountNotFound(account_id)
    return accounts


def _check_kind(kind: str, accounts: dict[str, Account], entries: list[tuple[str, int]]) -> None:
    rule = _KIND_PARTIES.get(kind)
    if rule is None:
        return
    (payer_kind, payee_kind), refusal = rule
    payers = [accounts[account_id].kind for account_id, amount in entries if amount < 0]
    payees = [accounts[account_id].kind for account_id, amount in entries if amount > 0]
    if (payers, payees) != ([payer_kind], [payee_kind]):
        raise InvalidParty(("kind",), refusal)


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
    locked: LockedAccounts | None = None,
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
    accounts = _lock_accounts((account_id for account_id, _ in checked), locked)
    _check_kind(kind, accounts, checked)
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
    legs = [
        fastpath.Leg(account_id, amount, accounts[account_id].balance_minutes + amount)
        for account_id, amount in checked
    ]
    if external is None and reversal_of is None:
        # Nothing here can be refused by a constraint: every check ran under the locks. Without
        # a SAVEPOINT the posting takes two round trips fewer while it holds them.
        return fastpath.write(session, values, legs, accounts)
    try:
        with session.begin_nested():
            return fastpath.write(session, values, legs, accounts)
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
    locked: LockedAccounts | None = None,
) -> Transaction:
    """Post balanced ``(account_id, minutes)`` entries as one transaction; flushed, not committed.

    Raises ``UnbalancedTransaction``, ``AccountNotFound``, ``InvalidParty`` (a desk not paid by a
    member to an organization, help not between members), ``CreditLimitExceeded`` or (for an
    ``external=(platform_id, remote_id)`` seen before) ``DuplicateExternal``. ``locked``: accounts
    locked in this transaction (``resolve_parties``), not read again. Sends ``transaction_posted``
    inside the open transaction.
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
        locked=locked,
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
    locked: LockedAccounts | None = None,
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
        locked=locked,
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

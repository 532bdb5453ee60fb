"""Typed ledger errors: each carries a machine ``code`` and a sentence a person can act on."""

from __future__ import annotations


class LedgerError(Exception):
    """A posting or a lookup the ledger refuses; nothing was changed."""

    code = "ledger_error"


class AccountNotFound(LedgerError):
    """No account with this id (or for this owner)."""

    code = "account_not_found"

    def __init__(self, account_id: str, detail: str | None = None) -> None:
        super().__init__(detail or f"There is no account {account_id}.")
        self.account_id = account_id


class TransactionNotFound(LedgerError):
    """No transaction with this id."""

    code = "transaction_not_found"

    def __init__(self, transaction_id: str) -> None:
        super().__init__(f"There is no transaction {transaction_id}.")
        self.transaction_id = transaction_id


class UnbalancedTransaction(LedgerError):
    """The entries do not sum to zero, are empty, zero, or name an account twice."""

    code = "unbalanced_transaction"


class CreditLimitExceeded(LedgerError):
    """The posting would take an account below its credit limit."""

    code = "credit_limit_exceeded"

    def __init__(self, account_id: str, balance: int, limit: int, attempted: int) -> None:
        super().__init__(
            f"Account {account_id} has {balance} minutes and may not go below {limit}; "
            f"a change of {attempted} minutes would take it to {balance + attempted}."
        )
        self.account_id = account_id
        self.balance = balance
        self.limit = limit
        self.attempted = attempted


class AlreadyReversed(LedgerError):
    """The transaction was reversed already, or is itself a reversal."""

    code = "already_reversed"

    def __init__(self, transaction_id: str, reason: str) -> None:
        super().__init__(reason)
        self.transaction_id = transaction_id


class InvalidCursor(LedgerError):
    """A statement cursor that this ledger did not hand out."""

    code = "invalid_cursor"

    def __init__(self) -> None:
        super().__init__("The cursor is not one this ledger handed out; start from the first page.")


class DuplicateExternal(LedgerError):
    """This remote transfer was imported already, as ``existing_transaction_id``."""

    code = "duplicate_external"

    def __init__(self, existing_transaction_id: str) -> None:
        super().__init__(
            f"This remote transfer was imported already as transaction {existing_transaction_id}."
        )
        self.existing_transaction_id = existing_transaction_id


class InvalidParty(LedgerError):
    """A payer or payee this posting cannot have: unknown, not active, a clearing account named
    by a client, the same account on both sides, or not what the posting's kind moves between.

    ``field`` is the path of the request field at fault, e.g. ``("payer", "member_id")``.
    """

    code = "invalid_party"

    def __init__(self, field: tuple[str, ...], detail: str) -> None:
        super().__init__(detail)
        self.field = field

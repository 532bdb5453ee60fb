"""How ledger errors, schema errors and HTTP errors become RFC 9457 problems on the API."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from gateway.ledger.errors import (
    AccountNotFound,
    AlreadyReversed,
    CreditLimitExceeded,
    DuplicateExternal,
    InvalidCursor,
    InvalidParty,
    LedgerError,
    TransactionNotFound,
    UnbalancedTransaction,
)
from gateway.problems import Problem, ValidationProblem, problem_type

# Error class -> (status, title). Checked in order: subclasses before their bases.
LEDGER_STATUS: tuple[tuple[type[LedgerError], int, str], ...] = (
    (AccountNotFound, 404, "Account not found"),
    (TransactionNotFound, 404, "Transaction not found"),
    (InvalidCursor, 400, "Invalid cursor"),
    (AlreadyReversed, 409, "Already reversed"),
    (DuplicateExternal, 409, "Already imported"),
    (CreditLimitExceeded, 422, "Credit limit exceeded"),
    (UnbalancedTransaction, 422, "Unbalanced transaction"),
    (LedgerError, 422, "Refused by the ledger"),
)


def ledger_problem(exc: LedgerError) -> Problem:
    """The problem for a ledger error, with its machine ``code`` and its facts."""
    if isinstance(exc, InvalidParty):
        # A field of the request names what the ledger refuses: answered as a schema's refusal.
        errors: Any = [str(exc)]
        for name in reversed(exc.field):
            errors = {name: errors}
        return _validation(errors)
    status, title = next((s, t) for cls, s, t in LEDGER_STATUS if isinstance(exc, cls))
    extensions: dict[str, Any] = {"code": exc.code}
    if isinstance(exc, CreditLimitExceeded):
        extensions.update(
            account_id=exc.account_id,
            balance_minutes=exc.balance,
            credit_limit_minutes=exc.limit,
            attempted_minutes=exc.attempted,
        )
    elif isinstance(exc, DuplicateExternal):
        extensions["existing_transaction_id"] = exc.existing_transaction_id
    elif isinstance(exc, AlreadyReversed | TransactionNotFound):
        extensions["transaction_id"] = exc.transaction_id
    elif isinstance(exc, AccountNotFound):
        extensions["account_id"] = exc.account_id
    return Problem(status, str(exc), title=title, type=problem_type(exc.code), **extensions)


def problem_for(exc: BaseException) -> Problem | None:
    """The problem a client should see for ``exc``; None for an unexpected error (a 500)."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, ValidationError):
        return _validation(_messages(exc))
    if isinstance(exc, LedgerError):
        return ledger_problem(exc)
    if isinstance(exc, HTTPException) and exc.code is not None and exc.code < 500:
        return Problem(exc.code, exc.description, title=HTTPStatus(exc.code).phrase)
    return None


def _validation(errors: dict[str, Any]) -> Problem:
    problem = ValidationProblem(errors)
    problem.extensions["code"] = "validation"
    return problem


def _messages(exc: ValidationError) -> dict[str, object]:
    messages = exc.normalized_messages()
    return messages if isinstance(messages, dict) else {"_schema": messages}

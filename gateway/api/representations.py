"""Ledger rows as the API's documents (dicts the response schemas dump), with their links."""

from __future__ import annotations

from typing import Any

from flask import url_for

from gateway.ledger import services as ledger
from gateway.ledger.models import Account, Organization, Transaction
from gateway.ledger.services import StatementLine
from gateway.members.models import Member
from schemas.ledger import (
    AccountSchema,
    MemberSchema,
    OrganizationListSchema,
    OrganizationSchema,
    StatementSchema,
    TransactionSchema,
)

# Built once: a schema holds no request state (marshmallow 4 has no context), and building one
# costs more than dumping a small document with it.
_TRANSACTION = TransactionSchema()


def _account(account: Account) -> dict[str, Any]:
    limit = account.credit_limit_minutes
    return {
        "id": account.id,
        "kind": account.kind,
        "member_id": account.member_id,
        "organization_id": account.organization_id,
        "platform_id": account.platform_id,
        "balance_minutes": account.balance_minutes,
        "credit_limit_minutes": limit,
        "available_minutes": None if limit is None else account.balance_minutes - limit,
        "created_at": account.created_at,
        "links": {
            "self_link": url_for("api.get_account", account_id=account.id),
            "transactions": url_for("api.get_account_transactions", account_id=account.id),
        },
    }


def account_document(account: Account) -> dict[str, Any]:
    """An account with its balance."""
    document: dict[str, Any] = AccountSchema().dump(_account(account))
    return document


_UNSET: Any = object()


def _transaction(txn: Transaction, reversed_by: Transaction | None = _UNSET) -> dict[str, Any]:
    reversal = ledger.reversal_of(txn.id) if reversed_by is _UNSET else reversed_by
    return {
        "id": txn.id,
        "kind": txn.kind,
        "description": txn.description,
        "minutes": txn.minutes,
        "payer_account_id": txn.payer_account_id,
        "payee_account_id": txn.payee_account_id,
        "entries": txn.entries,
        "occurred_at": txn.occurred_at,
        "created_at": txn.created_at,
        "reversal_of": txn.reversal_of,
        "reversed_by": reversal.id if reversal is not None else None,
        "source": txn.source,
        "links": {
            "self_link": url_for("api.get_transaction", transaction_id=txn.id),
            "reversal": url_for("api.get_transaction", transaction_id=reversal.id)
            if reversal is not None
            else url_for("api.post_reversal", transaction_id=txn.id),
        },
    }


def transaction_document(
    txn: Transaction, reversed_by: Transaction | None = _UNSET
) -> dict[str, Any]:
    """A transaction with its entries and links.

    ``reversed_by=None`` says it has no reversal (one just posted), which saves looking it up.
    """
    document: dict[str, Any] = _TRANSACTION.dump(_transaction(txn, reversed_by))
    return document


def statement_document(
    account: Account, lines: list[StatementLine], next_cursor: str | None
) -> dict[str, Any]:
    """A page of an account's statement."""
    document: dict[str, Any] = StatementSchema().dump(
        {
            "account_id": account.id,
            "balance_minutes": account.balance_minutes,
            "items": lines,
            "next_cursor": next_cursor,
        }
    )
    return document


def member_document(member: Member, account: Account) -> dict[str, Any]:
    """The token's member and their account."""
    document: dict[str, Any] = MemberSchema().dump(
        {
            "id": member.id,
            "display_name": member.display_name,
            "locale": member.locale,
            "municipio": member.municipio,
            "account": _account(account),
        }
    )
    return document


def _organization(organization: Organization) -> dict[str, Any]:
    return {
        "id": organization.id,
        "name": organization.name,
        "kind": organization.kind,
        "municipio": organization.municipio,
        "created_at": organization.created_at,
        "account": _account(ledger.account_for_organization(organization.id)),
    }


def organization_document(organization: Organization) -> dict[str, Any]:
    """An organization and its account."""
    document: dict[str, Any] = OrganizationSchema().dump(_organization(organization))
    return document


def organization_list_document(organizations: list[Organization]) -> dict[str, Any]:
    """Every organization."""
    document: dict[str, Any] = OrganizationListSchema().dump(
        {"items": [_organization(o) for o in organizations]}
    )
    return document

"""``/transactions``: posting hours between members and organizations, and reversing them."""

from __future__ import annotations

from typing import Any

from flask import url_for

from gateway.api import access
from gateway.api.blueprint import bp
from gateway.api.idempotency import idempotent
from gateway.api.openapi import operation
from gateway.api.payloads import load_json
from gateway.api.representations import transaction_document
from gateway.auth.resource import current_member, require_oauth
from gateway.db import db
from gateway.ledger import services as ledger
from gateway.ledger.errors import AccountNotFound
from gateway.ledger.models import Account
from gateway.members.models import Member
from gateway.problems import ValidationProblem
from schemas.ledger import ReversalCreateSchema, TransactionCreateSchema, TransactionSchema

Created = tuple[dict[str, Any], int, dict[str, str]]

_CREATE = TransactionCreateSchema()  # built once: loading keeps no state in the schema

_POST_ERRORS = {
    400: ("No Idempotency-Key, or a body that is not JSON.", None),
    409: ("A request with this Idempotency-Key is still running (see Retry-After).", None),
    415: ("The body is not JSON.", None),
    422: (
        "Invalid fields, a refused posting (code credit_limit_exceeded, ...), or an "
        "Idempotency-Key reused for another request (idempotency_mismatch).",
        None,
    ),
}


def _refuse(side: str, message: str, key: str | None = None) -> ValidationProblem:
    return ValidationProblem({side: {key: [message]} if key else [message]})


# Member id -> their account, locked, and whether the member is active (members named by the
# request who have an account; see ``ledger.lock_member_accounts``).
Known = dict[str, tuple[Account, bool]]


def _active_member(side: str, member_id: str, active: bool | None = None) -> None:
    """Refuse a member who is gone or not active (``active`` when already known)."""
    if active is None:
        member = db.session.get(Member, member_id)
        active = member is not None and member.is_active
    if not active:
        raise _refuse(side, f"There is no active member {member_id}.", "member_id")


def _member_account(side: str, member_id: str, known: Known) -> Account:
    account, active = known.get(member_id, (None, None))
    _active_member(side, member_id, active)
    # Without a known account this is their first posting: the account is created.
    return account if account is not None else ledger.account_for_member(member_id)


def _resolve(side: str, party: dict[str, Any], known: Known) -> Account:
    """The account a payer or payee names; 422 with a field message when there is none."""
    if "member_id" in party:
        return _member_account(side, str(party["member_id"]), known)
    if "organization_id" in party:
        try:
            return ledger.account_for_organization(str(party["organization_id"]))
        except AccountNotFound as exc:
            raise _refuse(side, str(exc), "organization_id") from None
    try:
        account = ledger.get_account(str(party["account_id"]))
    except AccountNotFound as exc:
        raise _refuse(side, str(exc), "account_id") from None
    if account.kind == "clearing":
        # Clearing accounts mirror the partner platforms: only the sync engine posts to them.
        raise _refuse(side, "Clearing accounts cannot be used here.", "account_id")
    if account.member_id is not None:
        _active_member(side, account.member_id)
    return account


def _check_kind(kind: str, payer: Account, payee: Account) -> None:
    if kind == "desk" and (payer.kind, payee.kind) != ("member", "organization"):
        raise _refuse("kind", "A desk is paid by a member to an organization.")
    if kind == "help" and (payer.kind, payee.kind) != ("member", "member"):
        raise _refuse("kind", "Help is paid by the member who was helped to the one who helped.")
    if payer.id == payee.id:
        raise _refuse("payee", "The payer and the payee must be different accounts.")


def _created(txn_document: dict[str, Any], transaction_id: str) -> Created:
    location = url_for("api.get_transaction", transaction_id=transaction_id)
    return txn_document, 201, {"Location": location}


@bp.post("/transactions")
@operation(
    summary="Post hours from a payer to a payee",
    description="The payer is the member who was helped or used the desk. A member's token "
    "posts only as that member paying; the website's client token posts between any members "
    "and organizations. A posting that would take the payer below its credit limit is refused "
    "(422, code `credit_limit_exceeded`).",
    tag="Transactions",
    scopes=["transactions:write"],
    body=TransactionCreateSchema,
    idempotent=True,
    example={
        "payer": {"member_id": "0b6f2c1e-5d7a-4c3e-9a51-2f0d8e4b7c19"},
        "payee": {"organization_id": "5e0c8f0a-3b1d-4f4e-8d2a-7c6b5a493827"},
        "minutes": 180,
        "kind": "desk",
        "description": "Scrivania alla cooperativa",
    },
    responses={201: ("The posted transaction.", TransactionSchema), **_POST_ERRORS},
    response_headers={201: {"Location": "The transaction's URL."}},
)
@require_oauth("transactions:write")
@idempotent
def post_transaction() -> Created:
    """Post one transfer of minutes (views under @idempotent do not commit)."""
    data = load_json(_CREATE)
    # In one global order: two postings creating the same two accounts on demand (a member's
    # first posting) in opposite orders would deadlock on each other's inserts.
    sides = sorted(("payer", "payee"), key=lambda side: sorted(data[side].items()))
    # The members' accounts are locked as they are read: the posting need not read them again.
    known = ledger.lock_member_accounts(
        str(data[side]["member_id"]) for side in sides if "member_id" in data[side]
    )
    accounts = {side: _resolve(side, data[side], known) for side in sides}
    payer, payee = accounts["payer"], accounts["payee"]
    access.ensure_can_post(payer)
    _check_kind(data["kind"], payer, payee)
    member = current_member()
    txn = ledger.post_transfer(
        payer_account_id=payer.id,
        payee_account_id=payee.id,
        minutes=data["minutes"],
        description=data["description"],
        kind=data["kind"],
        occurred_at=data["occurred_at"],
        source="api",
        created_by_client_id=access.client_id(),
        metadata={"posted_by_member_id": member.id} if member is not None else None,
    )
    return _created(transaction_document(txn, reversed_by=None), txn.id)


@bp.get("/transactions/<transaction_id>")
@operation(
    summary="One transaction",
    description="Readable by `admin`, by a member whose account it touches, and by the client "
    "that posted it.",
    tag="Transactions",
    scopes=["hours:read", "transactions:write", "admin"],
    responses={
        200: ("The transaction.", TransactionSchema),
        404: ("No such transaction.", None),
    },
)
@require_oauth(["hours:read", "transactions:write", "admin"])
def get_transaction(transaction_id: str) -> dict[str, Any]:
    """One transaction with its entries."""
    txn = ledger.get_transaction(transaction_id)
    access.ensure_can_read_transaction(txn)
    return transaction_document(txn)


@bp.post("/transactions/<transaction_id>/reversal")
@operation(
    summary="Reverse a transaction",
    description="Posts the exact opposite of the transaction. A transaction is reversed at most "
    "once, and a reversal is never reversed (409, code `already_reversed`). A member's token "
    "reverses only what its member received (a refund).",
    tag="Transactions",
    scopes=["transactions:write"],
    body=ReversalCreateSchema,
    idempotent=True,
    example={"reason": "Registrata due volte per errore"},
    responses={
        201: ("The reversal.", TransactionSchema),
        404: ("No such transaction.", None),
        **_POST_ERRORS,
        409: ("Already reversed, or the Idempotency-Key is in use.", None),
    },
    response_headers={201: {"Location": "The reversal's URL."}},
)
@require_oauth("transactions:write")
@idempotent
def post_reversal(transaction_id: str) -> Created:
    """Reverse one transaction (views under @idempotent do not commit)."""
    data = load_json(ReversalCreateSchema())
    original = ledger.get_transaction(transaction_id)
    access.ensure_can_reverse(original)
    reversal = ledger.reverse_transaction(
        transaction_id,
        reason=data["reason"],
        source="api",
        created_by_client_id=access.client_id(),
    )
    return _created(transaction_document(reversal, reversed_by=None), reversal.id)

"""``/transactions``: posting hours between members and organizations, and reversing them."""

from __future__ import annotations

from typing import Any, cast

from flask import url_for

from gateway.api import access
from gateway.api.blueprint import bp
from gateway.api.idempotency import idempotent
from gateway.api.openapi import operation
from gateway.api.payloads import load_json
from gateway.api.representations import transaction_document
from gateway.auth.resource import current_member, require_oauth
from gateway.ledger import services as ledger
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


def _party(named: dict[str, Any]) -> ledger.Party:
    """The party a request's ``payer`` or ``payee`` names (its one id is a UUID once loaded)."""
    ((field, value),) = named.items()
    # The payload schema admits only the three fields a Party names.
    return ledger.Party(cast(ledger.PartyField, field), str(value))


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
    parties = ledger.resolve_parties(_party(data["payer"]), _party(data["payee"]))
    access.ensure_can_post(parties.payer)
    member = current_member()
    txn = ledger.post_transfer(
        payer_account_id=parties.payer.id,
        payee_account_id=parties.payee.id,
        minutes=data["minutes"],
        description=data["description"],
        kind=data["kind"],
        occurred_at=data["occurred_at"],
        source="api",
        created_by_client_id=access.client_id(),
        metadata={"posted_by_member_id": member.id} if member is not None else None,
        locked=parties.locked,
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

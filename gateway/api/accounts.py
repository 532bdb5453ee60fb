"""``/accounts/{id}``: balances and statements."""

from __future__ import annotations

from typing import Any

from flask import make_response, url_for
from werkzeug.wrappers import Response

from gateway.api import access
from gateway.api.blueprint import bp
from gateway.api.openapi import operation
from gateway.api.payloads import load_query
from gateway.api.representations import account_document, statement_document
from gateway.auth.resource import require_oauth
from gateway.ledger import services as ledger
from schemas.ledger import AccountSchema, StatementQuerySchema, StatementSchema

READ_SCOPES = ["hours:read", "admin"]


@bp.get("/accounts/<account_id>")
@operation(
    summary="An account's balance",
    description="A member's token reads its own account; `admin` reads any.",
    tag="Accounts",
    scopes=READ_SCOPES,
    responses={
        200: ("The account.", AccountSchema),
        404: ("No such account.", None),
    },
)
@require_oauth(READ_SCOPES)
def get_account(account_id: str) -> dict[str, Any]:
    """One account with its balance."""
    account = ledger.get_account(account_id)
    access.ensure_can_read_account(account)
    return account_document(account)


@bp.get("/accounts/<account_id>/transactions")
@operation(
    summary="An account's statement, newest first",
    description="Pages follow `next_cursor` (also in the `Link` header, rel=next). Entries "
    "posted while paging appear on the first page, never inside later ones.",
    tag="Accounts",
    scopes=READ_SCOPES,
    query=StatementQuerySchema,
    responses={
        200: ("A page of the statement.", StatementSchema),
        400: ("The cursor is not one we handed out.", None),
        404: ("No such account.", None),
        422: ("Invalid paging parameters.", None),
    },
    response_headers={200: {"Link": 'The next page, as <url>; rel="next".'}},
)
@require_oauth(READ_SCOPES)
def get_account_transactions(account_id: str) -> Response:
    """A page of the account's statement."""
    account = ledger.get_account(account_id)
    access.ensure_can_read_account(account)
    query = load_query(StatementQuerySchema())
    lines, next_cursor = ledger.statement(
        account_id, cursor=query.get("cursor"), limit=query["limit"]
    )
    response = make_response(statement_document(account, lines, next_cursor))
    if next_cursor is not None:
        next_url = url_for(
            "api.get_account_transactions",
            account_id=account_id,
            cursor=next_cursor,
            limit=query["limit"],
        )
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return response

"""The "my hours" page: the balance, each linked timebank's view of it, and the history.

Who may call it: the logged-in member, for their own account only (there is no account id in
the address to change).
"""

from __future__ import annotations

from flask import Response, request

from gateway.auth.session import current_session_member
from gateway.ledger import services as ledger
from gateway.ledger.errors import InvalidCursor
from gateway.members import history
from gateway.members.blueprint import bp, login_required, page
from gateway.members.hours_format import (
    format_balance,
    format_date,
    format_datetime,
    format_minutes,
)
from gateway.members.models import Member

PAGE_SIZE = 20


@bp.app_context_processor
def _hour_formats() -> dict[str, object]:
    """Templates format minutes and times as the pages' own code does."""
    return {
        "format_minutes": format_minutes,
        "format_balance": format_balance,
        "format_date": format_date,
        "format_datetime": format_datetime,
    }


def _member() -> Member:
    member = current_session_member()
    assert member is not None  # noqa: S101 - login_required
    return member


@bp.get("/account/hours")
@login_required
def hours() -> Response:
    """The balance, each timebank's balance beside it, and a page of postings."""
    member = _member()
    # Read, never created here: a member without postings has no account yet.
    account = ledger.find_member_account(member.id)
    cursor = request.args.get("cursor") or None
    postings: list[history.Posting] = []
    next_cursor = None
    if account is not None:
        try:
            postings, next_cursor = history.history(account, cursor=cursor, limit=PAGE_SIZE)
        except InvalidCursor:
            return page("hours.html", 400, member=member, bad_cursor=True)
    elif cursor is not None:
        return page("hours.html", 400, member=member, bad_cursor=True)
    return page(
        "hours.html",
        member=member,
        balance=account.balance_minutes if account is not None else 0,
        # Later pages are for the history: the timebanks' readings are on the first.
        platforms=history.platform_balances(member, account) if cursor is None else [],
        postings=postings,
        next_cursor=next_cursor,
        first_page=cursor is None,
        bad_cursor=False,
    )

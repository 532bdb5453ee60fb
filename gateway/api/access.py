"""Who may read and post what, beyond the scopes: the rules of member and client tokens.

A member token (issued to the website for a member) reads only that member's account and posts
only as the payer. A client-credentials token (the website's back end) with ``transactions:write``
posts between any member and organization accounts. ``admin`` reads every account.
"""

from __future__ import annotations

from gateway.auth.resource import current_member, current_token
from gateway.ledger import services as ledger
from gateway.ledger.models import Account, Transaction
from gateway.members.models import Member
from gateway.problems import Problem


def has_scope(scope: str) -> bool:
    """The current token was granted ``scope``."""
    return scope in current_token.scopes


def client_id() -> str:
    """The OAuth client the current token belongs to."""
    return str(current_token.client_id)


def require_member() -> Member:
    """The member the token acts for; 403 for a client-credentials token."""
    member = current_member()
    if member is None:
        raise Problem(
            403,
            "This operation acts for a member: use a token issued for a member.",
            title="Member token required",
            type="member_token_required",
            code="member_token_required",
        )
    return member


def _forbidden(detail: str) -> Problem:
    return Problem(403, detail, title="Forbidden", type="forbidden", code="forbidden")


def _own_account_id(member: Member) -> str | None:
    account = ledger.find_member_account(member.id)
    return account.id if account is not None else None


def ensure_can_read_account(account: Account) -> None:
    """``admin`` reads any account; otherwise only a member's own account."""
    if has_scope("admin"):
        return
    member = current_member()
    if member is not None and account.member_id == member.id:
        return
    raise _forbidden("This token may read only its member's own account.")


def ensure_can_read_transaction(txn: Transaction) -> None:
    """``admin`` reads all; a member the transactions on their account; a client its own."""
    if has_scope("admin"):
        return
    member = current_member()
    if member is not None:
        own = _own_account_id(member)
        if any(entry.account_id == own for entry in txn.entries):
            return
    elif txn.created_by_client_id == client_id():
        return
    raise _forbidden("This token may not read this transaction.")


def ensure_can_post(payer: Account) -> None:
    """A member token posts only as the payer (who received the help or used the desk)."""
    member = current_member()
    if member is not None and payer.member_id != member.id:
        raise _forbidden(
            "A member's token posts only transactions where that member pays "
            "(the member who was helped or used the desk)."
        )


def ensure_can_reverse(original: Transaction) -> None:
    """A member token reverses only what its member received (a refund); a client any."""
    if has_scope("admin"):
        return
    member = current_member()
    if member is None:
        return
    if original.payee_account_id != _own_account_id(member):
        raise _forbidden(
            "A member's token reverses only transactions that member received (a refund)."
        )

"""Who may read and post what, beyond the scopes: the rules of member and client tokens.

A member's token, whichever client holds it, acts only for that member: it reads only that
member's account and posts only as the payer. A token without a member (client credentials)
posts between any member and organization accounts only when it is the first-party client's
(the website's back end); a machine client's token cannot post at all, since every transaction
moves a member's hours. ``admin`` reads every account. See the README's "Authorization model".

Every refusal is a 403 carrying the RFC 6750 challenge ``insufficient_scope``: the token is
valid but does not reach this far.
"""

from __future__ import annotations

from gateway.auth.kinds import FIRST_PARTY
from gateway.auth.resource import bearer_challenge, current_member, current_token
from gateway.ledger import services as ledger
from gateway.ledger.models import Account, Transaction
from gateway.members.models import Member
from gateway.problems import Problem, problem_type


def has_scope(scope: str) -> bool:
    """The current token may act with ``scope`` (see ``OAuthToken.scopes``)."""
    return scope in current_token.scopes


def client_id() -> str:
    """The OAuth client the current token belongs to."""
    return str(current_token.client_id)


def _refusal(code: str, title: str, detail: str) -> Problem:
    return Problem(
        403,
        detail,
        title=title,
        type=problem_type(code),
        code=code,
        headers={"WWW-Authenticate": bearer_challenge("insufficient_scope", detail)},
    )


def require_member() -> Member:
    """The member the token acts for; 403 for a client-credentials token."""
    member = current_member()
    if member is None:
        raise _refusal(
            "member_token_required",
            "Member token required",
            "This operation acts for a member: use a token issued for a member.",
        )
    return member


def _forbidden(detail: str) -> Problem:
    return _refusal("forbidden", "Forbidden", detail)


def _ensure_first_party_client() -> None:
    """A token without a member acts for any member only if it is the website's own."""
    if current_token.client.kind != FIRST_PARTY:
        raise _refusal(
            "client_token_not_allowed",
            "Client token not allowed",
            "Only the project's website (a first-party client) posts for any member with "
            "its own token; other clients act with a member's token, for that member.",
        )


def _own_account_id(member: Member) -> str | None:
    account = ledger.find_member_account(member.id)
    return account.id if account is not None else None


def _ensure_can_read_member_hours(member_id: str | None, refusal: str) -> None:
    """``admin`` and the website's own token read any member's hours; a member token its own."""
    if has_scope("admin"):
        return
    member = current_member()
    if member is None:
        # The website moves any member's hours; it shows them their balances too.
        _ensure_first_party_client()
    elif member.id != member_id:
        raise _forbidden(refusal)


def ensure_can_read_account(account: Account) -> None:
    """Who may read an account (an organization's: ``admin`` and the website)."""
    _ensure_can_read_member_hours(
        account.member_id, "This token may read only its member's own account."
    )


def ensure_can_read_member(member_id: str) -> None:
    """Who may read a member and their balance."""
    _ensure_can_read_member_hours(member_id, "This token may read only its own member.")


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
    if member is None:
        _ensure_first_party_client()
    elif payer.member_id != member.id:
        raise _forbidden(
            "A member's token posts only transactions where that member pays "
            "(the member who was helped or used the desk)."
        )


def ensure_can_reverse(original: Transaction) -> None:
    """An operator reverses any; a member what they received (a refund); the website any."""
    if has_scope("admin"):
        return
    member = current_member()
    if member is None:
        _ensure_first_party_client()
    elif original.payee_account_id != _own_account_id(member):
        raise _forbidden(
            "A member's token reverses only transactions that member received (a refund)."
        )

"""``/members/me`` and ``/members/{id}``: a member and their hours.

A member's id is the ``sub`` of the ID token the website received at login.
"""

from __future__ import annotations

from typing import Any

from gateway.api import access
from gateway.api.blueprint import bp
from gateway.api.openapi import operation
from gateway.api.representations import member_document
from gateway.auth.resource import require_oauth
from gateway.db import db
from gateway.ledger import services as ledger
from gateway.ledger.errors import AccountNotFound
from gateway.members.models import Member
from schemas.ledger import MemberSchema


@bp.get("/members/me")
@operation(
    summary="The member of the token and their balance",
    description="Needs a token issued for a member. The member's account is created on first use.",
    tag="Members",
    scopes=["hours:read"],
    responses={200: ("The member and their account.", MemberSchema)},
)
@require_oauth("hours:read")
def get_me() -> dict[str, Any]:
    """The token's member, with their account."""
    member = access.require_member()
    account = ledger.account_for_member(member.id)
    db.session.commit()  # the account may just have been created
    return member_document(member, account)


@bp.get("/members/<member_id>")
@operation(
    summary="A member and their balance, by id (the ID token's `sub`)",
    description="The website's own token (client credentials of the first-party client) and "
    "`admin` read any member; a member's token reads only its own member.",
    tag="Members",
    scopes=["hours:read"],
    responses={
        200: ("The member and their account.", MemberSchema),
        404: ("No such member.", None),
    },
)
@require_oauth(["hours:read", "admin"])
def get_member(member_id: str) -> dict[str, Any]:
    """One member, with their account."""
    access.ensure_can_read_member(member_id)
    member = db.session.get(Member, member_id)
    if member is None or member.status == "erased":
        raise AccountNotFound(member_id, f"There is no member {member_id}.")
    account = ledger.account_for_member(member.id)
    db.session.commit()  # the account may just have been created
    return member_document(member, account)

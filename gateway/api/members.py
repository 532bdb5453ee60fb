"""``/members/me``: the member a token acts for, and their hours."""

from __future__ import annotations

from typing import Any

from gateway.api import access
from gateway.api.blueprint import bp
from gateway.api.openapi import operation
from gateway.api.representations import member_document
from gateway.auth.resource import require_oauth
from gateway.db import db
from gateway.ledger import services as ledger
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

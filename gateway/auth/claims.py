"""What the provider says about a member, scope by scope (ID token and userinfo)."""

from __future__ import annotations

from authlib.oidc.core import UserInfo

from gateway.auth.scopes import parse_scopes
from gateway.members.models import Member


def user_info(member: Member, scope: str) -> UserInfo:
    """Claims for ``member`` that ``scope`` allows: ``sub`` always, the rest by scope."""
    scopes = parse_scopes(scope)
    info = UserInfo(sub=member.id)
    if "profile" in scopes:
        info["name"] = member.display_name
        info["locale"] = member.locale
        info["updated_at"] = int(member.updated_at.timestamp())
    if "email" in scopes:
        info["email"] = member.email
        info["email_verified"] = member.email_verified_at is not None
    return info

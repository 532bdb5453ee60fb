"""What a member has granted (logins, tokens, consents to clients), and ending it.

``end_member_grants`` is the one way a member's access ends everywhere: a password reset,
an operator's disable and an erase call it, so none of them can forget a kind of grant.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import g, has_app_context
from sqlalchemy import delete, func, select, update

from gateway.auth.kinds import THIRD_PARTY
from gateway.auth.models import AuthorizationCode, ClientConsent, OAuthClient, OAuthToken
from gateway.auth.scopes import parse_scopes
from gateway.db import db
from gateway.members.models import MemberSession


def is_third_party(client: OAuthClient) -> bool:
    """A relying party the project does not run: it asks consent, from verified members only."""
    return client.kind == THIRD_PARTY


def _revoke_tokens_and_codes(member_id: str, client_id: str | None = None) -> None:
    now = int(time.time())
    tokens = update(OAuthToken).where(
        OAuthToken.member_id == member_id, OAuthToken.revoked_at.is_(None)
    )
    # A code issued a moment ago must not become tokens: marked used, its exchange is
    # treated as a replay and refused.
    codes = update(AuthorizationCode).where(
        AuthorizationCode.member_id == member_id, AuthorizationCode.used_at.is_(None)
    )
    if client_id is not None:
        tokens = tokens.where(OAuthToken.client_id == client_id)
        codes = codes.where(AuthorizationCode.client_id == client_id)
    db.session.execute(tokens.values(revoked_at=now))
    db.session.execute(codes.values(used_at=now))


def end_member_grants(member_id: str, *, forget_consents: bool = False) -> None:
    """End every login and revoke every token and pending code of the member; not committed.

    Access and refresh tokens of every family and every client stop working at once, and
    every browser logged in as the member is logged out. ``forget_consents`` also drops the
    consents given to third-party clients (for an erase, or when the consents may not have
    been the owner's). The caller commits, with the change that made this necessary.
    """
    _revoke_tokens_and_codes(member_id)
    db.session.execute(delete(MemberSession).where(MemberSession.member_id == member_id))
    if forget_consents:
        db.session.execute(delete(ClientConsent).where(ClientConsent.member_id == member_id))
    if has_app_context() and "gateway_login" in g:
        # This request's own login may be among those ended: look it up again.
        g.pop("gateway_login")


@dataclass(frozen=True)
class GrantedApp:
    """A third-party client the member consented to."""

    client_id: str
    name: str
    scopes: list[str]
    granted_at: datetime
    last_used_at: datetime | None


def granted_apps(member_id: str) -> list[GrantedApp]:
    """The clients the member consented to, by name; last use is their newest token's issue."""
    last_used = (
        select(OAuthToken.client_id, func.max(OAuthToken.issued_at).label("at"))
        .where(OAuthToken.member_id == member_id)
        .group_by(OAuthToken.client_id)
        .subquery()
    )
    rows = db.session.execute(
        select(ClientConsent, OAuthClient.name, last_used.c.at)
        .join(OAuthClient, OAuthClient.client_id == ClientConsent.client_id)
        .outerjoin(last_used, last_used.c.client_id == ClientConsent.client_id)
        .where(ClientConsent.member_id == member_id, OAuthClient.revoked_at.is_(None))
        .order_by(OAuthClient.name, OAuthClient.client_id)
    )
    return [
        GrantedApp(
            client_id=consent.client_id,
            name=name,
            scopes=sorted(parse_scopes(consent.scope)),
            granted_at=consent.granted_at,
            last_used_at=datetime.fromtimestamp(at, UTC) if at is not None else None,
        )
        for consent, name, at in rows
    ]


def revoke_app(member_id: str, client_id: str) -> str | None:
    """Withdraw the member's consent to a client and revoke every token it holds for them.

    Returns the client's name, or None when the member had not consented to it (nothing is
    changed then). Not committed.
    """
    found = db.session.execute(
        select(ClientConsent, OAuthClient.name)
        .join(OAuthClient, OAuthClient.client_id == ClientConsent.client_id)
        .where(ClientConsent.member_id == member_id, ClientConsent.client_id == client_id)
    ).one_or_none()
    if found is None:
        return None
    consent, name = found
    db.session.delete(consent)
    _revoke_tokens_and_codes(member_id, client_id)
    return name

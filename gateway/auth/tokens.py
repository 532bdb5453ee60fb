"""Storing and issuing bearer tokens (hashed at rest)."""

from __future__ import annotations

import secrets
import time

from gateway.auth.models import OAuthToken, token_digest
from gateway.db import db


def store_token(
    token: dict,
    client_id: str,
    member_id: str | None = None,
    family_id: str | None = None,
) -> OAuthToken:
    """Record the token response ``token`` (as Authlib builds it); only its hashes are kept."""
    row = OAuthToken(
        client_id=client_id,
        member_id=member_id,
        token_type=token.get("token_type", "Bearer"),
        access_token_hash=token_digest(token["access_token"]),
        refresh_token_hash=token_digest(token["refresh_token"])
        if token.get("refresh_token")
        else None,
        scope=token.get("scope", ""),
        issued_at=int(time.time()),
        expires_in=int(token.get("expires_in", 3600)),
    )
    if family_id:
        row.family_id = family_id
    db.session.add(row)
    db.session.flush()
    return row


def issue_token(
    client_id: str,
    scope: str,
    member_id: str | None = None,
    expires_in: int = 3600,
) -> str:
    """Create and store an access token without a grant flow (operators' tooling and tests)."""
    access_token = secrets.token_urlsafe(32)
    store_token(
        {"access_token": access_token, "scope": scope, "expires_in": expires_in},
        client_id=client_id,
        member_id=member_id,
    )
    db.session.commit()
    return access_token

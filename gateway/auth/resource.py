"""Protecting the API with bearer tokens: ``@require_oauth("scope")``.

Errors come out as problem+json with the ``WWW-Authenticate`` challenge RFC 6750 section 3
asks for: no error code when the request carried no token, ``invalid_token`` (401) for a token
that is unknown, expired or revoked, and ``insufficient_scope`` (403) with the ``scope`` needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from authlib.integrations.flask_oauth2 import ResourceProtector, current_token
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import MissingAuthorizationError, UnsupportedTokenTypeError
from authlib.oauth2.rfc6750 import BearerTokenValidator, InsufficientScopeError, InvalidTokenError
from sqlalchemy import bindparam, select
from sqlalchemy.orm import contains_eager

from gateway.auth.models import OAuthClient, OAuthToken, token_digest
from gateway.db import db
from gateway.members.models import Member
from gateway.problems import Problem

__all__ = ["bearer_challenge", "current_member", "current_token", "require_oauth"]

REALM = "gateway"

# With its client in one query (every API request runs it, so it is built once): a token whose
# client is gone or revoked is as good as unknown, and the client's kind is at hand.
_TOKEN_BY_DIGEST = (
    select(OAuthToken)
    .join(OAuthToken.client)
    .options(contains_eager(OAuthToken.client))
    .where(OAuthToken.access_token_hash == bindparam("digest"), OAuthClient.revoked_at.is_(None))
)


def bearer_challenge(error: str | None = None, description: str = "", scope: str = "") -> str:
    """A ``WWW-Authenticate: Bearer`` value (RFC 6750 section 3)."""
    parts = [f'realm="{REALM}"']
    if error:
        parts.append(f'error="{error}"')
        if description:
            parts.append('error_description="{}"'.format(description.replace('"', "'")))
        if scope:
            parts.append(f'scope="{scope}"')
    return "Bearer " + ", ".join(parts)


class _ScopeError(InsufficientScopeError):
    """Insufficient scope, knowing the scopes that would have sufficed (any one of them)."""

    def __init__(self, needed: Sequence[str]) -> None:
        super().__init__()
        self.needed = list(needed)


class _HashedBearerValidator(BearerTokenValidator):
    """Finds tokens by digest; refuses expired and revoked ones, and those of revoked clients."""

    def authenticate_token(self, token_string: str) -> OAuthToken | None:
        return db.session.scalar(_TOKEN_BY_DIGEST, {"digest": token_digest(token_string)})

    def validate_token(self, token: OAuthToken | None, scopes: Any, request: Any) -> None:
        if token is None or token.is_expired() or token.is_revoked():
            raise InvalidTokenError()
        if token.member_id is not None:
            member = db.session.get(Member, token.member_id)
            if member is None or not member.is_active:
                raise InvalidTokenError()
        # The scopes the token may act with now: its kind, its member's role (OAuthToken.scopes).
        if self.scope_insufficient(token.get_scope(), scopes):
            raise _ScopeError(scopes or [])


class _ProblemResourceProtector(ResourceProtector):
    def raise_error_response(self, error: OAuth2Error) -> None:
        if isinstance(error, MissingAuthorizationError | UnsupportedTokenTypeError):
            # RFC 6750 section 3.1: no error code when the request carried no bearer token.
            raise Problem(
                401,
                "This request needs a bearer token.",
                title="Unauthorized",
                type="missing-token",
                headers={"WWW-Authenticate": bearer_challenge()},
            )
        if isinstance(error, _ScopeError):
            needed = error.needed[0] if error.needed else ""
            either = " or ".join(error.needed)
            detail = f"This request needs a token with scope {either}."
            raise Problem(
                403,
                detail,
                title="Insufficient scope",
                type="insufficient-scope",
                headers={
                    "WWW-Authenticate": bearer_challenge("insufficient_scope", detail, needed)
                },
                scope=needed,
                scopes_accepted=error.needed,
            )
        detail = "The access token is unknown, expired or revoked."
        raise Problem(
            401,
            detail,
            title="Unauthorized",
            type="invalid-token",
            headers={"WWW-Authenticate": bearer_challenge("invalid_token", detail)},
        )


require_oauth = _ProblemResourceProtector()
require_oauth.register_token_validator(_HashedBearerValidator(realm=REALM))


def current_member() -> Member | None:
    """The member the current token acts for (None for client-credentials tokens)."""
    member_id = getattr(current_token, "member_id", None)
    return db.session.get(Member, member_id) if member_id else None

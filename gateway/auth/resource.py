"""Protecting the API with bearer tokens: ``@require_oauth("scope")``.

Errors come out as problem+json with the ``WWW-Authenticate`` header RFC 6750 asks for.
"""

from __future__ import annotations

from typing import Any

from authlib.integrations.flask_oauth2 import ResourceProtector, current_token
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import MissingAuthorizationError
from authlib.oauth2.rfc6750 import BearerTokenValidator, InvalidTokenError
from sqlalchemy import bindparam, select

from gateway.auth.models import OAuthClient, OAuthToken, token_digest
from gateway.db import db
from gateway.members.models import Member
from gateway.problems import Problem

__all__ = ["current_member", "current_token", "require_oauth"]


# With its client in one query (every API request runs it, so it is built once): a token whose
# client is gone or revoked is as good as unknown.
_TOKEN_BY_DIGEST = (
    select(OAuthToken)
    .join(OAuthClient, OAuthClient.client_id == OAuthToken.client_id)
    .where(OAuthToken.access_token_hash == bindparam("digest"), OAuthClient.revoked_at.is_(None))
)


class _HashedBearerValidator(BearerTokenValidator):
    """Finds tokens by digest; refuses expired and revoked ones, and those of revoked clients."""

    def authenticate_token(self, token_string: str) -> OAuthToken | None:
        return db.session.scalar(_TOKEN_BY_DIGEST, {"digest": token_digest(token_string)})

    def validate_token(self, token: OAuthToken | None, scopes: Any, request: Any) -> None:
        super().validate_token(token, scopes, request)
        assert token is not None  # noqa: S101 - the parent raised for a missing token
        if token.member_id is not None:
            member = db.session.get(Member, token.member_id)
            if member is None or not member.is_active:
                raise InvalidTokenError(realm=self.realm)


class _ProblemResourceProtector(ResourceProtector):
    def raise_error_response(self, error: OAuth2Error) -> None:
        headers = dict(error.get_headers())
        headers.pop("Content-Type", None)
        status = error.status_code or 401
        if isinstance(error, MissingAuthorizationError):
            # RFC 6750 section 3.1: no error code when the request carried no credentials.
            headers["WWW-Authenticate"] = 'Bearer realm="gateway"'
        elif headers.get("WWW-Authenticate", "").lower().startswith("bearer "):
            headers["WWW-Authenticate"] = "Bearer " + headers["WWW-Authenticate"][7:]
        raise Problem(
            status,
            error.description or error.error,
            title="Insufficient scope" if status == 403 else "Unauthorized",
            type=error.error,
            headers=headers,
        )


require_oauth = _ProblemResourceProtector()
require_oauth.register_token_validator(_HashedBearerValidator())


def current_member() -> Member | None:
    """The member the current token acts for (None for client-credentials tokens)."""
    member_id = getattr(current_token, "member_id", None)
    return db.session.get(Member, member_id) if member_id else None

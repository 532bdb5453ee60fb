"""OAuth clients and tokens. Secrets and tokens are stored only as hashes."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash

from gateway.auth.scopes import parse_scopes
from gateway.db import Base, UTCDateTime, utcnow
from gateway.members.models import new_id


def token_digest(token: str) -> str:
    """SHA-256 of a bearer token: tokens are random, so a fast hash is enough to look them up."""
    return hashlib.sha256(token.encode()).hexdigest()


class OAuthClient(Base):
    """A relying party (the website, the demo site) or a machine client (a partner back end)."""

    __tablename__ = "oauth_clients"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    # scrypt hash of the secret; NULL for public clients (PKCE only).
    secret_hash: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(120))
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    scope: Mapped[str] = mapped_column(Text, default="")
    grant_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    # First-party relying parties (the project's website, the demo site) are not asked
    # for consent: the member is already signing in to the project itself.
    skip_consent: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def client_metadata(self) -> dict:
        """The registered metadata Authlib's endpoints read (RP-initiated logout)."""
        return {
            "post_logout_redirect_uris": list(self.post_logout_redirect_uris),
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
        }

    @property
    def token_endpoint_auth_method(self) -> str:
        """How the client authenticates at the token endpoint."""
        return "none" if self.is_public else "client_secret_basic"

    # -- authlib ClientMixin --------------------------------------------------
    def get_client_id(self) -> str:
        """The public identifier."""
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        """Only one registered URI may be defaulted to; otherwise the request must name it."""
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str) -> str:
        """The requested scopes this client may have."""
        allowed = parse_scopes(self.scope)
        return " ".join(s for s in scope.split() if s in allowed) if scope else ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Exact string match, as RFC 9700 requires."""
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        """Constant-time check against the stored hash."""
        if not self.secret_hash or self.revoked_at is not None:
            return False
        return check_password_hash(self.secret_hash, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """Public clients authenticate with nothing; confidential ones with a secret."""
        if self.is_public:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        """Only the authorization code flow is offered."""
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        """Grants registered for this client."""
        return grant_type in self.grant_types and self.revoked_at is None


class OAuthToken(Base):
    """An access token (and maybe a refresh token) issued to a client, for a member or itself."""

    __tablename__ = "oauth_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE")
    )
    member_id: Mapped[str | None] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    token_type: Mapped[str] = mapped_column(String(16), default="Bearer")
    access_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Tokens issued by rotation from one authorization share a family: reuse revokes it whole.
    family_id: Mapped[str] = mapped_column(String(36), default=new_id, index=True)
    scope: Mapped[str] = mapped_column(Text, default="")
    issued_at: Mapped[int] = mapped_column(Integer, default=lambda: int(time.time()))
    expires_in: Mapped[int] = mapped_column(Integer, default=3600)
    refresh_expires_in: Mapped[int] = mapped_column(Integer, default=30 * 24 * 3600)
    revoked_at: Mapped[int | None] = mapped_column(Integer)
    # Set when the refresh token was exchanged: presenting it again is reuse.
    refresh_used_at: Mapped[int | None] = mapped_column(Integer)

    # -- authlib TokenMixin ---------------------------------------------------
    def check_client(self, client: OAuthClient) -> bool:
        """The token belongs to ``client``."""
        return hmac.compare_digest(self.client_id, client.get_client_id())

    def get_scope(self) -> str:
        """Granted scopes."""
        return self.scope

    def get_expires_in(self) -> int:
        """Lifetime of the access token in seconds."""
        return self.expires_in

    def get_expires_at(self) -> int:
        """Expiry of the access token (epoch seconds)."""
        return self.issued_at + self.expires_in

    def is_expired(self) -> bool:
        """The access token's lifetime has passed."""
        return time.time() >= self.get_expires_at()

    def is_revoked(self) -> bool:
        """The token (and its refresh token) was revoked."""
        return self.revoked_at is not None

    def is_refresh_token_valid(self) -> bool:
        """The refresh token can still be exchanged."""
        return (
            self.refresh_token_hash is not None
            and not self.is_revoked()
            and self.refresh_used_at is None
            and time.time() < self.issued_at + self.refresh_expires_in
        )

    @property
    def scopes(self) -> set[str]:
        """Granted scopes as a set."""
        return parse_scopes(self.scope)


class AuthorizationCode(Base):
    """A one-time authorization code; kept after use so that a replay can revoke what it issued."""

    __tablename__ = "oauth_authorization_codes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE")
    )
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text, default="")
    nonce: Mapped[str | None] = mapped_column(Text)
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(10))
    auth_time: Mapped[int] = mapped_column(Integer)
    acr: Mapped[str | None] = mapped_column(String(64))
    amr: Mapped[list[str] | None] = mapped_column(JSON)
    issued_at: Mapped[int] = mapped_column(Integer, default=lambda: int(time.time()))
    expires_in: Mapped[int] = mapped_column(Integer, default=60)
    used_at: Mapped[int | None] = mapped_column(Integer)
    # The token family the code was exchanged for: a replayed code revokes it.
    family_id: Mapped[str | None] = mapped_column(String(36))

    # -- authlib AuthorizationCodeMixin ----------------------------------------
    def get_redirect_uri(self) -> str:
        """The redirect URI the code was issued for."""
        return self.redirect_uri

    def get_scope(self) -> str:
        """Scopes granted with the code."""
        return self.scope

    def get_nonce(self) -> str | None:
        """The OIDC nonce carried into the ID token."""
        return self.nonce

    def get_auth_time(self) -> int:
        """When the member authenticated."""
        return self.auth_time

    def get_acr(self) -> str | None:
        """Authentication context class."""
        return self.acr

    def get_amr(self) -> list[str] | None:
        """Authentication methods."""
        return self.amr

    def is_expired(self) -> bool:
        """Codes live a minute (RFC 6749 recommends at most ten)."""
        return time.time() >= self.issued_at + self.expires_in


class SigningKey(Base):
    """A private key that signs ID tokens; published in the JWKS until its tokens expire."""

    __tablename__ = "oauth_signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(10), default="RS256")
    # The private JWK, encrypted at rest with GATEWAY_ENCRYPTION_KEYS.
    private_jwk_encrypted: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Set when a newer key took over signing; the key stays published until retire_after.
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    retire_after: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ClientConsent(Base):
    """The scopes a member granted a third-party client, so the consent screen is asked once."""

    __tablename__ = "oauth_client_consents"
    __table_args__ = (UniqueConstraint("member_id", "client_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE")
    )
    scope: Mapped[str] = mapped_column(Text, default="")
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

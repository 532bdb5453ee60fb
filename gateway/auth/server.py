"""The OAuth 2 / OpenID Connect authorization server, on Authlib's Flask integration.

Grants: authorization code (PKCE S256 only; required for public clients), refresh token
(rotated; presenting a used one revokes its whole family; a family ends
``OAUTH_REFRESH_FAMILY_MAX_SECONDS`` after its authorization), client credentials (for the
clients whose kind allows it). Endpoints: revocation (RFC 7009), introspection (RFC 7662),
RP-initiated logout. Clients authenticate with every method discovery advertises, at every
endpoint that advertises it. Codes and tokens are stored as SHA-256 digests; a code or refresh
token is claimed with a compare-and-set update, so two concurrent exchanges cannot both succeed.
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast

from authlib.consts import default_json_headers
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    grants,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.rpinitiated import EndSessionEndpoint
from flask import Flask, current_app, request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from gateway.auth import keys
from gateway.auth.claims import user_info
from gateway.auth.kinds import CLIENT_CREDENTIALS, CLIENT_CREDENTIALS_SCOPES
from gateway.auth.models import (
    AuthorizationCode,
    ClientAssertion,
    OAuthClient,
    OAuthToken,
    token_digest,
)
from gateway.auth.scopes import SCOPES, parse_scopes
from gateway.auth.session import auth_time, logout_member
from gateway.db import db, rows_affected
from gateway.members.models import Member, new_id

ACCESS_TOKEN_LIFETIME = 3600
CODE_LIFETIME = 60

# Client authentication, as discovery advertises it. Each client is registered for the methods
# of its credential (OAuthClient.auth_methods); public clients cannot introspect.
TOKEN_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
CONFIDENTIAL_AUTH_METHODS = [m for m in TOKEN_AUTH_METHODS if m != "none"]
ASSERTION_ALGORITHMS = ["RS256", "PS256", "ES256"]
# An assertion may be valid this long at most: its jti is remembered until it expires.
ASSERTION_MAX_LIFETIME = 600


def issuer() -> str:
    """This provider's issuer identifier (``GATEWAY_BASE_URL``)."""
    return current_app.config["GATEWAY_BASE_URL"]


def _query_client(client_id: str) -> OAuthClient | None:
    client = db.session.scalar(select(OAuthClient).where(OAuthClient.client_id == client_id))
    return client if client is not None and client.revoked_at is None else None


def revoke_family(family_id: str) -> int:
    """Revoke every token of a family (one authorization and its rotations); commits."""
    result = db.session.execute(
        update(OAuthToken)
        .where(OAuthToken.family_id == family_id, OAuthToken.revoked_at.is_(None))
        .values(revoked_at=int(time.time()))
    )
    db.session.commit()
    return rows_affected(result)


def _save_token(token: dict, request: Any) -> None:
    now = int(time.time())
    family_id, family_issued_at = None, now
    if getattr(request, "authorization_code", None) is not None:
        family_id = request.authorization_code.family_id
    elif getattr(request, "refresh_token", None) is not None:
        family_id = request.refresh_token.family_id
        family_issued_at = request.refresh_token.family_issued_at
    user = request.user
    row = OAuthToken(
        client_id=request.client.get_client_id(),
        member_id=user.id if isinstance(user, Member) else None,
        token_type=token.get("token_type", "Bearer"),
        access_token_hash=token_digest(token["access_token"]),
        refresh_token_hash=token_digest(token["refresh_token"])
        if token.get("refresh_token")
        else None,
        scope=token.get("scope", ""),
        issued_at=now,
        family_issued_at=family_issued_at,
        expires_in=int(token.get("expires_in", ACCESS_TOKEN_LIFETIME)),
    )
    if family_id:
        row.family_id = family_id
    db.session.add(row)
    db.session.flush()


class PrivateKeyJWT(JWTBearerClientAssertion):
    """RFC 7523 client authentication with a key of the JWK set registered for the client.

    The assertion's audience is the issuer, the token endpoint or the endpoint it is sent to;
    its ``jti`` is used once, and it may be valid ``ASSERTION_MAX_LIFETIME`` at most.
    """

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self) -> None:
        super().__init__(validate_jti=True, leeway=30)

    def get_audiences(self) -> list[str]:
        base = issuer()
        return list(dict.fromkeys([base, f"{base}/oauth/token", f"{base}{request.path}"]))

    def resolve_client_public_key(self, client: OAuthClient) -> KeySet:
        if not client.jwks:
            raise InvalidClientError(description="The client has no registered keys.")
        return KeySet.import_key_set(cast(Any, client.jwks))

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> dict:
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=ASSERTION_ALGORITHMS)
        except JoseError as exc:
            raise InvalidClientError(description="The client assertion does not verify.") from exc
        exp = token.claims.get("exp")
        if isinstance(exp, int) and exp > time.time() + ASSERTION_MAX_LIFETIME:
            raise InvalidClientError(description="The client assertion lives too long.")
        self.verify_claims(token.claims)
        return token.claims

    def validate_jti(self, claims: dict, jti: Any) -> bool:
        # Committed at once: a request that fails later must not free the assertion for reuse.
        db.session.add(
            ClientAssertion(
                client_id=str(claims["sub"]),
                jti_hash=token_digest(str(jti)),
                expires_at=int(claims["exp"]) + self.leeway,
            )
        )
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            return False
        return True


class S256Challenge(CodeChallenge):
    """PKCE with S256 only, required from public clients (RFC 9700 section 2.1.1)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012 - Authlib's class attribute

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if data.get("code_challenge") and not data.get("code_challenge_method"):
            # Without a method RFC 7636 means "plain", which we do not accept.
            raise InvalidRequestError("'code_challenge_method' must be S256.")
        if grant.request.client.is_public and not data.get("code_challenge"):
            raise InvalidRequestError("Public clients must send a PKCE 'code_challenge' (S256).")
        super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge(self, authorization_code: AuthorizationCode) -> str | None:
        return authorization_code.code_challenge

    def get_authorization_code_challenge_method(
        self, authorization_code: AuthorizationCode
    ) -> str | None:
        return authorization_code.code_challenge_method


class CodeGrant(grants.AuthorizationCodeGrant):
    """Authorization code grant; codes are one-time and a replay revokes what they issued."""

    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS

    def validate_authorization_request(self) -> str:
        payload = self.request.payload
        if "openid" in parse_scopes(payload.scope) and not payload.redirect_uri:
            # OIDC Core 3.1.2.1: required even when one URI is registered. Shown as a page.
            raise InvalidRequestError("OpenID requests must name their 'redirect_uri'.")
        redirect_uri = super().validate_authorization_request()
        requested = parse_scopes(self.request.payload.scope)
        if requested - self.request.client.allowed_scopes:
            # Refuse rather than narrow silently: the consent screen must show what is granted.
            error = InvalidScopeError(redirect_uri=redirect_uri)
            error.state = self.request.payload.state
            raise error
        return redirect_uri

    def generate_token(
        self,
        user: Any = None,
        scope: str | None = None,
        grant_type: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict:
        # OIDC Core section 11: a refresh token is for clients that asked for offline_access.
        offline = "offline_access" in parse_scopes(scope)
        return super().generate_token(
            user, scope, grant_type, expires_in, include_refresh_token and offline
        )

    def save_authorization_code(self, code: str, request: Any) -> AuthorizationCode:
        data = request.payload.data
        # request.scope is the requested scope, or the client's default one (RFC 6749 3.3).
        scopes = parse_scopes(request.scope)
        if not request.user.is_admin:
            scopes.discard("admin")  # only operators' tokens operate the gateway
        row = AuthorizationCode(
            code_hash=token_digest(code),
            client_id=request.client.get_client_id(),
            member_id=request.user.id,
            redirect_uri=request.payload.redirect_uri or "",
            scope=" ".join(sorted(scopes)),
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            auth_time=auth_time() or int(time.time()),
            amr=["pwd"],
            expires_in=CODE_LIFETIME,
        )
        # Tokens exchanged for this code form a family named after it (replay revokes them).
        row.id = row.family_id = new_id()
        db.session.add(row)
        db.session.commit()
        return row

    def query_authorization_code(self, code: str, client: OAuthClient) -> AuthorizationCode | None:
        row = db.session.scalar(
            select(AuthorizationCode).where(AuthorizationCode.code_hash == token_digest(code))
        )
        if row is None or row.client_id != client.get_client_id():
            return None
        claimed = rows_affected(
            db.session.execute(
                update(AuthorizationCode)
                .where(AuthorizationCode.id == row.id, AuthorizationCode.used_at.is_(None))
                .values(used_at=int(time.time()))
            )
        )
        db.session.commit()
        if not claimed:
            # RFC 6749 section 4.1.2: a replayed code revokes the tokens it was exchanged for.
            revoke_family(row.family_id or row.id)
            return None
        if row.is_expired():
            return None
        return row

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        # Kept (already marked used) so that a replay can be recognised and punished.
        return None

    def authenticate_user(self, authorization_code: AuthorizationCode) -> Member | None:
        member = db.session.get(Member, authorization_code.member_id)
        return member if member is not None and member.is_active else None


class OpenIDCodeExtension(OpenIDCode):
    """ID tokens signed with the current key, ``iss`` and ``aud`` set, claims by scope."""

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return (
            db.session.scalar(
                select(AuthorizationCode.id).where(
                    AuthorizationCode.client_id == request.payload.client_id,
                    AuthorizationCode.nonce == nonce,
                )
            )
            is not None
        )

    def resolve_client_private_key(self, client: OAuthClient) -> Any:
        return keys.signing_key()

    def get_client_algorithm(self, client: OAuthClient) -> str:
        return keys.ALGORITHM

    def get_encode_header(self, client: OAuthClient) -> dict:
        return {"alg": keys.ALGORITHM, "kid": keys.signing_key().kid, "typ": "JWT"}

    def get_client_claims(self, client: OAuthClient) -> dict:
        now = int(time.time())
        return {
            "iss": issuer(),
            "aud": client.get_client_id(),
            "azp": client.get_client_id(),
            "iat": now,
            "exp": now + keys.ID_TOKEN_LIFETIME,
        }

    def generate_user_info(self, user: Member, scope: str) -> UserInfo:
        return user_info(user, scope)


class RotatingRefreshGrant(grants.RefreshTokenGrant):
    """Refresh tokens rotate; a refresh token presented twice revokes its whole family."""

    INCLUDE_NEW_REFRESH_TOKEN = True
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS

    def authenticate_refresh_token(self, refresh_token: str) -> OAuthToken | None:
        row = db.session.scalar(
            select(OAuthToken).where(OAuthToken.refresh_token_hash == token_digest(refresh_token))
        )
        if row is None:
            return None
        if row.refresh_used_at is not None:
            revoke_family(row.family_id)
            return None
        # Expired by its own life or by its family's absolute lifetime: rotation ends there.
        return row if row.is_refresh_token_valid() else None

    def validate_token_request(self) -> None:
        super().validate_token_request()
        token: OAuthToken = self.request.refresh_token
        now = int(time.time())
        claimed = rows_affected(
            db.session.execute(
                update(OAuthToken)
                .where(OAuthToken.id == token.id, OAuthToken.refresh_used_at.is_(None))
                .values(refresh_used_at=now, revoked_at=now)
            )
        )
        db.session.commit()
        if not claimed:
            # Lost a race with another exchange of the same refresh token: that is reuse too.
            revoke_family(token.family_id)
            raise InvalidGrantError()

    def authenticate_user(self, refresh_token: OAuthToken) -> Member | None:
        if refresh_token.member_id is None:
            return None
        member = db.session.get(Member, refresh_token.member_id)
        return member if member is not None and member.is_active else None

    def revoke_old_credential(self, refresh_token: OAuthToken) -> None:
        # Already marked used and revoked when the request was validated.
        return None


class MachineGrant(grants.ClientCredentialsGrant):
    """Client credentials, for the clients registered for them (machine clients and the
    website's back end). The token has no member, so it never carries a member's scope."""

    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def validate_token_request(self) -> None:
        super().validate_token_request()
        client: OAuthClient = self.request.client
        requested = parse_scopes(self.request.payload.scope)
        beyond = requested - (client.allowed_scopes & CLIENT_CREDENTIALS_SCOPES)
        if beyond:
            # Refused rather than narrowed, as in the code flow: the client learns what it lacks.
            raise InvalidScopeError(
                f"This client's own tokens cannot carry {' '.join(sorted(beyond))}."
            )
        self.request.scope = (
            " ".join(sorted(requested)) if requested else client.default_scopes(CLIENT_CREDENTIALS)
        )

    def create_token_response(self) -> tuple[int, dict, list]:
        token = self.generate_token(scope=self.request.scope, include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class _TokenLookup:
    SUPPORTED_TOKEN_TYPES = ("access_token", "refresh_token")

    def query_token(self, token_string: str, token_type_hint: str | None) -> OAuthToken | None:
        digest = token_digest(token_string)
        columns = [OAuthToken.access_token_hash, OAuthToken.refresh_token_hash]
        if token_type_hint == "refresh_token":  # noqa: S105 - a hint's name, not a secret
            columns.reverse()
        for column in columns:
            row = db.session.scalar(select(OAuthToken).where(column == digest))
            if row is not None:
                return row
        return None


class Revocation(_TokenLookup, RevocationEndpoint):
    """RFC 7009; revoking a refresh token also revokes the access tokens of its family."""

    CLIENT_AUTH_METHODS = TOKEN_AUTH_METHODS

    def authenticate_token(self, request: Any, client: OAuthClient) -> OAuthToken | None:
        # RFC 7009 section 2.2: a token of another client is answered like an unknown one.
        self.check_params(request, client)
        token = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        return token if token is not None and token.check_client(client) else None

    def revoke_token(self, token: OAuthToken, request: Any) -> None:
        revoke_family(token.family_id)


class Introspection(_TokenLookup, IntrospectionEndpoint):
    """RFC 7662: a client may introspect its own tokens; an ``admin`` client any token.

    A refresh token is described as one: active while it can still be exchanged (whatever
    became of the access token issued with it), with the expiry of the refresh token.
    """

    CLIENT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def check_permission(self, token: OAuthToken, client: OAuthClient, request: Any) -> bool:
        return token.check_client(client) or "admin" in client.allowed_scopes

    def create_endpoint_response(self, request: Any) -> tuple[int, dict, list]:
        client = self.authenticate_endpoint_client(request)
        token = self.authenticate_token(request, client)
        if token is None:
            return 200, {"active": False}, default_json_headers
        is_refresh = token_digest(request.form["token"]) == token.refresh_token_hash
        if is_refresh:
            active, expires_at = token.is_refresh_token_valid(), token.refresh_expires_at()
        else:
            active = not (token.is_expired() or token.is_revoked())
            expires_at = token.get_expires_at()
        if not (active and token.holders_active()):
            return 200, {"active": False}, default_json_headers
        return 200, self.describe(token, expires_at, not is_refresh), default_json_headers

    def describe(self, token: OAuthToken, expires_at: int, is_access: bool) -> dict:
        """The introspection answer for an active token."""
        payload = {
            "active": True,
            "scope": token.get_scope(),
            "client_id": token.client_id,
            "exp": expires_at,
            "iat": token.issued_at,
            "iss": issuer(),
        }
        if is_access:
            payload["token_type"] = token.token_type
        if token.member_id:
            payload["sub"] = token.member_id
        return payload


class EndSession(EndSessionEndpoint):
    """RP-initiated logout: redirects only to a registered post-logout URI, given a valid hint."""

    def get_server_jwks(self) -> dict:
        return keys.jwks()

    def get_algorithms(self) -> list[str]:
        return [keys.ALGORITHM]

    def end_session(self, end_session_request: Any) -> None:
        logout_member()


def authorization_server() -> AuthorizationServer:
    """The current app's authorization server."""
    return current_app.extensions["oauth_server"]


def init_app(app: Flask) -> None:
    """Build the app's authorization server (one per app: Authlib servers hold their grants)."""
    # Authlib logs issued tokens at DEBUG; keep that out of every log, whatever the level.
    logging.getLogger("authlib").setLevel(logging.INFO)
    app.config.setdefault(
        "OAUTH2_TOKEN_EXPIRES_IN",
        dict.fromkeys(
            ("authorization_code", "refresh_token", "client_credentials"), ACCESS_TOKEN_LIFETIME
        ),
    )
    app.config.setdefault("OAUTH2_REFRESH_TOKEN_GENERATOR", True)
    app.config.setdefault("OAUTH2_SCOPES_SUPPORTED", list(SCOPES))
    server = AuthorizationServer(app, query_client=_query_client, save_token=_save_token)
    server.register_client_auth_method(PrivateKeyJWT.CLIENT_AUTH_METHOD, PrivateKeyJWT())
    server.register_grant(CodeGrant, [S256Challenge(required=True), OpenIDCodeExtension()])
    server.register_grant(RotatingRefreshGrant)
    server.register_grant(MachineGrant)
    server.register_endpoint(Revocation)
    server.register_endpoint(Introspection)
    server.register_endpoint(EndSession)
    app.extensions["oauth_server"] = server

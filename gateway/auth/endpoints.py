"""The provider's machine-facing endpoints: discovery, JWKS, token, revocation,
introspection and userinfo. Errors follow the OAuth specs (``{"error": ...}`` JSON), which
is what OAuth client libraries expect; userinfo uses the API's problem+json bearer errors.
"""

from __future__ import annotations

from typing import cast

from flask import Blueprint, Response, jsonify

from gateway.auth import keys
from gateway.auth.claims import user_info
from gateway.auth.resource import current_member, current_token, require_oauth
from gateway.auth.scopes import SCOPES
from gateway.auth.server import (
    ASSERTION_ALGORITHMS,
    CONFIDENTIAL_AUTH_METHODS,
    TOKEN_AUTH_METHODS,
    authorization_server,
    issuer,
)
from gateway.db import db
from gateway.i18n import LOCALES
from gateway.members.models import Member

bp = Blueprint("oidc", __name__)

CLAIMS = ("sub", "name", "locale", "updated_at", "email", "email_verified", "auth_time", "nonce")


def metadata() -> dict:
    """OpenID Provider Metadata (OIDC Discovery 1.0) and RFC 8414 server metadata."""
    base = issuer()
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "userinfo_endpoint": f"{base}/oauth/userinfo",
        "jwks_uri": f"{base}/oauth/jwks",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "introspection_endpoint": f"{base}/oauth/introspect",
        "end_session_endpoint": f"{base}/oauth/logout",
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [keys.ALGORITHM],
        # The lists the endpoints themselves authenticate with: what is advertised is honoured.
        "token_endpoint_auth_methods_supported": list(TOKEN_AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "revocation_endpoint_auth_methods_supported": list(TOKEN_AUTH_METHODS),
        "revocation_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "introspection_endpoint_auth_methods_supported": list(CONFIDENTIAL_AUTH_METHODS),
        "introspection_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": list(CLAIMS),
        "prompt_values_supported": ["none", "login", "consent", "create"],
        "ui_locales_supported": list(LOCALES),
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
    }


@bp.get("/.well-known/openid-configuration")
@bp.get("/.well-known/oauth-authorization-server")
def discovery() -> Response:
    """Where everything is, for client libraries."""
    response = jsonify(metadata())
    response.cache_control.public = True
    response.cache_control.max_age = 300
    return response


@bp.get("/oauth/jwks")
def jwks() -> Response:
    """Public keys of the signer and of keys retired less than a token lifetime ago."""
    response = jsonify(keys.jwks())
    response.cache_control.public = True
    response.cache_control.max_age = 300
    return response


def _finish(response: Response) -> Response:
    # Grants flush what they issue; the response is only good if it is committed.
    if response.status_code < 400:
        db.session.commit()
    else:
        db.session.rollback()
    return response


@bp.post("/oauth/token")
def token() -> Response:
    """Code, refresh and client-credentials exchanges."""
    return _finish(authorization_server().create_token_response())


@bp.post("/oauth/revoke")
def revoke() -> Response:
    """RFC 7009 revocation."""
    return _finish(authorization_server().create_endpoint_response("revocation"))


@bp.post("/oauth/introspect")
def introspect() -> Response:
    """RFC 7662 introspection."""
    return _finish(authorization_server().create_endpoint_response("introspection"))


@bp.route("/oauth/userinfo", methods=["GET", "POST"])
@require_oauth("openid")
def userinfo() -> Response:
    """Claims about the member the token was issued for, by its scopes."""
    # Only a member's token acts with ``openid`` (OAuthToken.scopes): a client's own is refused
    # above with insufficient_scope.
    member = cast(Member, current_member())
    response = jsonify(dict(user_info(member, current_token.get_scope())))
    response.cache_control.no_store = True
    return response

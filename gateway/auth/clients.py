"""Registering relying parties and machine clients (operators' tooling)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select, update

from gateway.auth.models import OAuthClient, OAuthToken, hash_client_secret
from gateway.auth.scopes import parse_scopes, unknown_scopes
from gateway.db import db, utcnow


class ClientError(ValueError):
    """A client registration that cannot be accepted; the message says why."""


@dataclass(frozen=True)
class NewClient:
    """A registered client and its secret, which is shown this once and never stored."""

    client: OAuthClient
    secret: str | None


def _check_redirect_uri(uri: str) -> None:
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ClientError(f"redirect URI {uri!r} must be an absolute http(s) URL.")
    if parts.fragment:
        raise ClientError(f"redirect URI {uri!r} must not have a fragment.")
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme == "http" and not loopback:
        raise ClientError(f"redirect URI {uri!r} must use https (http only for loopback).")


def create_client(
    name: str,
    scope: str,
    redirect_uris: list[str] | tuple[str, ...] = (),
    post_logout_redirect_uris: list[str] | tuple[str, ...] = (),
    public: bool = False,
    first_party: bool = False,
    client_id: str | None = None,
) -> NewClient:
    """Register a client; commits. Browser clients need redirect URIs, machine clients don't."""
    unknown = unknown_scopes(scope)
    if unknown:
        raise ClientError(f"unknown scope(s): {', '.join(sorted(unknown))}.")
    if not parse_scopes(scope):
        raise ClientError("a client needs at least one scope.")
    for uri in (*redirect_uris, *post_logout_redirect_uris):
        _check_redirect_uri(uri)
    if public and not redirect_uris:
        raise ClientError("a public client needs a redirect URI (it can only use code + PKCE).")
    grant_types = []
    if redirect_uris:
        grant_types += ["authorization_code", "refresh_token"]
    if not public:
        grant_types.append("client_credentials")
    client_id = client_id or f"gw-{secrets.token_urlsafe(12)}"
    if db.session.scalar(select(OAuthClient.id).where(OAuthClient.client_id == client_id)):
        raise ClientError(f"client id {client_id!r} is taken.")
    secret = None if public else secrets.token_urlsafe(32)
    client = OAuthClient(
        client_id=client_id,
        secret_hash=hash_client_secret(secret) if secret else None,
        name=name,
        redirect_uris=list(redirect_uris),
        post_logout_redirect_uris=list(post_logout_redirect_uris),
        scope=" ".join(sorted(parse_scopes(scope))),
        grant_types=grant_types,
        is_public=public,
        skip_consent=first_party,
    )
    db.session.add(client)
    db.session.commit()
    return NewClient(client, secret)


def list_clients() -> list[OAuthClient]:
    """Every client, newest first."""
    return list(db.session.scalars(select(OAuthClient).order_by(OAuthClient.created_at.desc())))


def revoke_client(client_id: str) -> OAuthClient:
    """Revoke a client and every token it holds; commits."""
    client = db.session.scalar(select(OAuthClient).where(OAuthClient.client_id == client_id))
    if client is None:
        raise ClientError(f"no client {client_id!r}.")
    if client.revoked_at is None:
        client.revoked_at = utcnow()
        db.session.execute(
            update(OAuthToken)
            .where(OAuthToken.client_id == client_id, OAuthToken.revoked_at.is_(None))
            .values(revoked_at=int(utcnow().timestamp()))
        )
    db.session.commit()
    return client

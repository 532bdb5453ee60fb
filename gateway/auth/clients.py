"""Registering relying parties and machine clients (operators' tooling), each of one kind."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from sqlalchemy import select, update

from gateway.auth.kinds import (
    CLIENT_CREDENTIALS,
    CODE,
    DESCRIPTIONS,
    FIRST_PARTY,
    GRANTS,
    KIND_SCOPES,
    KINDS,
    MACHINE,
    REFRESH,
    THIRD_PARTY,
)
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


def _check_scope(kind: str, scope: str, default_scope: str | None) -> None:
    unknown = unknown_scopes(scope)
    if unknown:
        raise ClientError(f"unknown scope(s): {', '.join(sorted(unknown))}.")
    if not parse_scopes(scope):
        raise ClientError("a client needs at least one scope.")
    beyond = parse_scopes(scope) - KIND_SCOPES[kind]
    if beyond:
        why = {
            THIRD_PARTY: "operating the gateway is never delegated to a relying party",
            MACHINE: "its tokens have no member; it may hold only "
            + ", ".join(sorted(KIND_SCOPES[MACHINE])),
        }.get(kind, "")
        raise ClientError(f"a {kind} client may not hold {', '.join(sorted(beyond))}: {why}.")
    if default_scope is not None and not parse_scopes(default_scope) <= parse_scopes(scope):
        raise ClientError("the default scope must be within the client's scope.")


def _grant_types(
    kind: str, public: bool, redirect_uris: Sequence[str], grants: Sequence[str]
) -> list[str]:
    """The grants a registration asks for, or why it makes no sense for its kind."""
    unknown = set(grants) - {CODE, CLIENT_CREDENTIALS}
    if unknown:
        raise ClientError(
            f"unknown grant(s): {', '.join(sorted(unknown))} (choose {CODE} or "
            f"{CLIENT_CREDENTIALS}; refresh tokens come with {CODE} and offline_access)."
        )
    wanted = set(grants)
    if kind == MACHINE:
        if redirect_uris:
            raise ClientError("a machine client has no redirect URIs: it signs no member in.")
        if public:
            raise ClientError("a machine client cannot be public: it authenticates itself.")
        wanted.add(CLIENT_CREDENTIALS)
    elif redirect_uris:
        wanted.add(CODE)
    if CODE in wanted:
        if not redirect_uris:
            raise ClientError(f"the {CODE} grant needs a redirect URI.")
        wanted.add(REFRESH)
    if CLIENT_CREDENTIALS in wanted and public:
        raise ClientError("a public client has no secret: it cannot use client credentials.")
    beyond = wanted - GRANTS[kind]
    if beyond:
        raise ClientError(
            f"a {kind} client ({DESCRIPTIONS[kind]}) cannot use {', '.join(sorted(beyond))}."
        )
    if not wanted:
        raise ClientError(
            f"a {kind} client needs a redirect URI"
            + (f" or --grant {CLIENT_CREDENTIALS}." if kind == FIRST_PARTY else ".")
        )
    return [grant for grant in (CODE, REFRESH, CLIENT_CREDENTIALS) if grant in wanted]


def create_client(
    name: str,
    scope: str,
    *,
    kind: str,
    redirect_uris: Sequence[str] = (),
    post_logout_redirect_uris: Sequence[str] = (),
    public: bool = False,
    grants: Sequence[str] = (),
    default_scope: str | None = None,
    jwks: dict | None = None,
    client_id: str | None = None,
) -> NewClient:
    """Register a client of ``kind``; commits.

    Relying parties (first and third party) get the code flow for their redirect URIs; a
    first-party client may add ``client_credentials`` (the website's back end); a machine
    client gets client credentials only. A client with ``jwks`` authenticates with
    private_key_jwt and gets no secret.
    """
    if kind not in KINDS:
        raise ClientError(f"the kind must be one of {', '.join(KINDS)}, not {kind!r}.")
    _check_scope(kind, scope, default_scope)
    for uri in (*redirect_uris, *post_logout_redirect_uris):
        _check_redirect_uri(uri)
    grant_types = _grant_types(kind, public, redirect_uris, grants)
    if post_logout_redirect_uris and CODE not in grant_types:
        raise ClientError("post-logout redirect URIs are for clients that sign members in.")
    if jwks is not None:
        if public:
            raise ClientError("a public client has no keys: it cannot use private_key_jwt.")
        jwks = _check_jwks(jwks)
    client_id = client_id or f"gw-{secrets.token_urlsafe(12)}"
    if db.session.scalar(select(OAuthClient.id).where(OAuthClient.client_id == client_id)):
        raise ClientError(f"client id {client_id!r} is taken.")
    secret = None if public or jwks else secrets.token_urlsafe(32)
    scopes = " ".join(sorted(parse_scopes(scope)))
    client = OAuthClient(
        client_id=client_id,
        kind=kind,
        secret_hash=hash_client_secret(secret) if secret else None,
        jwks=jwks,
        name=name,
        redirect_uris=list(redirect_uris),
        post_logout_redirect_uris=list(post_logout_redirect_uris),
        scope=scopes,
        default_scope=scopes
        if default_scope is None
        else " ".join(sorted(parse_scopes(default_scope))),
        grant_types=grant_types,
        is_public=public,
    )
    db.session.add(client)
    db.session.commit()
    return NewClient(client, secret)


def _check_jwks(jwks: dict[str, Any]) -> dict[str, Any]:
    """A public JWK set with at least one signing key; private parts are refused."""
    from joserfc.errors import JoseError
    from joserfc.jwk import KeySet

    try:
        key_set = KeySet.import_key_set(cast(Any, jwks))
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise ClientError(f"the JWK set cannot be read: {exc}.") from None
    if not key_set.keys:
        raise ClientError("the JWK set has no key.")
    for key in key_set.keys:
        if key.is_private:
            raise ClientError("the JWK set holds a private key: register only the public part.")
        if key.key_type not in ("RSA", "EC"):
            raise ClientError(f"key type {key.key_type} cannot sign client assertions.")
    return dict(key_set.as_dict(private=False))


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

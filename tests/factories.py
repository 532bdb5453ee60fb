"""Factories for rows that tests need: call inside an application context."""

from __future__ import annotations

import itertools
import secrets

from gateway.auth.models import OAuthClient, hash_client_secret
from gateway.auth.tokens import issue_token
from gateway.db import db
from gateway.members.models import Member
from gateway.members.passwords import hash_password

_sequence = itertools.count(1)


def create_member(**fields) -> Member:
    """A committed, active member with a unique email."""
    n = next(_sequence)
    password = fields.pop("password", None)
    member = Member(
        email=fields.pop("email", f"member{n}@example.org"),
        display_name=fields.pop("display_name", f"Member {n}"),
        password_hash=hash_password(password) if password else None,
        **fields,
    )
    db.session.add(member)
    db.session.commit()
    return member


# The grants each kind of client is registered with, as ``gateway clients create`` does.
GRANTS_OF_KIND = {
    "first_party": ["authorization_code", "refresh_token", "client_credentials"],
    "third_party": ["authorization_code", "refresh_token"],
    "machine": ["client_credentials"],
}


def create_client(
    scope: str = "openid profile email hours:read transactions:write",
    kind: str = "third_party",
    **fields,
):
    """A committed confidential client of ``kind``; returns (client, plaintext secret)."""
    secret = secrets.token_urlsafe(24)
    client = OAuthClient(
        client_id=fields.pop("client_id", f"client-{next(_sequence)}"),
        kind=kind,
        secret_hash=fields.pop("secret_hash", hash_client_secret(secret)),
        name=fields.pop("name", "Test client"),
        redirect_uris=fields.pop(
            "redirect_uris", [] if kind == "machine" else ["https://site.example/callback"]
        ),
        scope=scope,
        grant_types=fields.pop("grant_types", GRANTS_OF_KIND[kind]),
        **fields,
    )
    db.session.add(client)
    db.session.commit()
    return client, secret


def bearer_headers(scope: str, member: Member | None = None, expires_in: int = 3600) -> dict:
    """Authorization headers carrying a fresh token of the website (a first-party client) with
    ``scope``, for ``member`` if given."""
    client, _ = create_client(scope=scope, kind="first_party")
    token = issue_token(
        client.client_id, scope, member_id=member.id if member else None, expires_in=expires_in
    )
    return {"Authorization": f"Bearer {token}"}

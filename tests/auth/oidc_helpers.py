"""Helpers for provider tests: PKCE pairs, logged-in sessions, authorization round trips."""

from __future__ import annotations

import base64
import hashlib
import secrets
from contextlib import nullcontext
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from flask import has_app_context

from gateway.auth.models import token_digest
from gateway.auth.session import SESSION_KEY
from gateway.db import db
from gateway.members.models import MemberSession

REDIRECT = "https://site.example/callback"


def pkce_pair() -> tuple[str, str]:
    """A code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def log_in(client, member, auth_time: float | None = None) -> None:
    """Give the test client a gateway login for ``member``, made at ``auth_time`` (default now).

    The login is a ``member_sessions`` row, as the login page makes it; works inside or
    outside an application context.
    """
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    at = datetime.fromtimestamp(auth_time, UTC) if auth_time is not None else now
    context = nullcontext() if has_app_context() else client.application.app_context()
    with context:
        db.session.add(
            MemberSession(
                token_hash=token_digest(token),
                member_id=member.id,
                authenticated_at=at,
                last_seen_at=now,
            )
        )
        db.session.commit()
    with client.session_transaction() as session:
        session[SESSION_KEY] = token


def query(location: str) -> dict[str, str]:
    """The query parameters of a redirect location."""
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def authorize_params(client_id: str, challenge: str | None, **extra) -> dict:
    """A typical authorization request."""
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid profile email",
        "state": "st-123",
        "nonce": "n-456",
    }
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(extra)
    return params

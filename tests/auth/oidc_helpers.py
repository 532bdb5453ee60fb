"""Helpers for provider tests: PKCE pairs, logged-in sessions, authorization round trips."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from urllib.parse import parse_qs, urlsplit

REDIRECT = "https://site.example/callback"


def pkce_pair() -> tuple[str, str]:
    """A code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def log_in(client, member, auth_time: int | None = None) -> None:
    """Give the test client a gateway session for ``member``."""
    with client.session_transaction() as session:
        session["member_id"] = member.id
        session["auth_time"] = auth_time or int(time.time())
        session["epoch"] = member.session_epoch


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

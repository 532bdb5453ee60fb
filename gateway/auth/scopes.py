"""The scopes the provider grants, with the words a consent screen shows."""

from __future__ import annotations

SCOPES: dict[str, str] = {
    "openid": "Sign you in",
    "profile": "Your display name and preferred language",
    "email": "Your email address",
    "offline_access": "Stay connected when you are away",
    "hours:read": "Read your hour balance and transactions",
    "transactions:write": "Record hour transactions",
    "admin": "Operate the gateway",
}

# Scopes that only make sense for a member's token (OpenID Connect's: sign-in, claims, offline
# access): a client-credentials token never carries them.
MEMBER_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})


def parse_scopes(value: str | None) -> set[str]:
    """Split a space-separated scope string."""
    return set((value or "").split())


def unknown_scopes(value: str | None) -> set[str]:
    """Scopes in ``value`` that the provider does not know."""
    return parse_scopes(value) - SCOPES.keys()

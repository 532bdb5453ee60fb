"""Signed, expiring links for email verification and password reset.

A verification token names the member and the address it was sent to, so changing the
address voids it. A reset token is bound to the current password hash, so it works once:
setting a new password changes the hash.
"""

from __future__ import annotations

import hashlib

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from gateway.db import db
from gateway.members.models import Member

VERIFY_MAX_AGE = 3 * 24 * 3600
RESET_MAX_AGE = 3600


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def _fingerprint(value: str | None) -> str:
    return hashlib.sha256((value or "").encode()).hexdigest()[:16]


def verification_token(member: Member, next_url: str | None = None) -> str:
    """A link token confirming ``member``'s current email address (and where to go next)."""
    return _serializer("verify-email").dumps([member.id, _fingerprint(member.email), next_url])


def reset_token(member: Member) -> str:
    """A one-time link token to set a new password."""
    return _serializer("reset-password").dumps([member.id, _fingerprint(member.password_hash)])


def _load(salt: str, token: str, max_age: int) -> list | None:
    try:
        loaded = _serializer(salt).loads(token, max_age=max_age)
    except (SignatureExpired, BadSignature, ValueError, TypeError):
        return None
    return loaded if isinstance(loaded, list) and len(loaded) >= 2 else None


def member_for_verification(token: str) -> tuple[Member, str | None] | None:
    """The member a valid, unexpired verification token names, and the page to go on to."""
    loaded = _load("verify-email", token, VERIFY_MAX_AGE)
    if loaded is None:
        return None
    member = db.session.get(Member, loaded[0])
    if member is None or not member.is_active or _fingerprint(member.email) != loaded[1]:
        return None
    return member, (loaded[2] if len(loaded) > 2 else None)


def member_for_reset(token: str) -> Member | None:
    """The member a valid, unexpired, unused reset token names."""
    loaded = _load("reset-password", token, RESET_MAX_AGE)
    if loaded is None:
        return None
    member = db.session.get(Member, loaded[0])
    if member is None or not member.is_active or _fingerprint(member.password_hash) != loaded[1]:
        return None
    return member

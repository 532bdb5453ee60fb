"""Signed, expiring links for email verification and password reset.

A verification token names the member and the address it was sent to, so changing the
address voids it. A reset token is bound to the current password hash, so it works once:
setting a new password changes the hash. Both carry the page to go on to afterwards (a path
on the gateway, often the authorization request of the site the member came from), so that
a link opened in another browser still leads back to that site.

A link that fails says why, because the member's next step differs: a malformed one was cut
or mistyped on its way (copy it whole from the mail), an expired one was authentic but is
too old (ask for another), a spent one was used already or no longer fits the account.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from gateway.db import db
from gateway.members.models import Member

VERIFY_MAX_AGE = 3 * 24 * 3600
RESET_MAX_AGE = 3600
# A page to go on to that is longer than this stays out of the link, which must fit on one
# line of a mail (RFC 5322 allows 998 characters): the member lands on their account instead.
MAX_NEXT_IN_LINK = 600

Reason = Literal["malformed", "expired", "spent"]


class BadLink(Exception):
    """A link token that cannot be used; ``reason`` says why, for the member's next step."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason)
        self.reason: Reason = reason


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def _fingerprint(value: str | None) -> str:
    return hashlib.sha256((value or "").encode()).hexdigest()[:16]


def _carried(next_url: str | None) -> str | None:
    return next_url if next_url and len(next_url) <= MAX_NEXT_IN_LINK else None


def verification_token(member: Member, next_url: str | None = None) -> str:
    """A link token confirming ``member``'s current email address (and where to go next)."""
    payload = [member.id, _fingerprint(member.email), _carried(next_url)]
    return _serializer("verify-email").dumps(payload)


def reset_token(member: Member, next_url: str | None = None) -> str:
    """A one-time link token to set a new password (and where to go next)."""
    payload = [member.id, _fingerprint(member.password_hash), _carried(next_url)]
    return _serializer("reset-password").dumps(payload)


def _load(salt: str, token: str, max_age: int) -> list:
    try:
        loaded = _serializer(salt).loads(token, max_age=max_age)
    except SignatureExpired:  # authentic, only too old: checked before BadSignature, its base
        raise BadLink("expired") from None
    except (BadSignature, ValueError, TypeError):
        raise BadLink("malformed") from None
    if not isinstance(loaded, list) or len(loaded) < 2:
        raise BadLink("malformed")
    return loaded


def _next_of(loaded: list) -> str | None:
    value = loaded[2] if len(loaded) > 2 else None
    return value if isinstance(value, str) else None


def member_for_verification(token: str) -> tuple[Member, str | None]:
    """The member a valid, unexpired verification token names, and the page to go on to.

    Raises ``BadLink`` with the reason it cannot be used.
    """
    loaded = _load("verify-email", token, VERIFY_MAX_AGE)
    member = db.session.get(Member, loaded[0])
    if member is None or not member.is_active or _fingerprint(member.email) != loaded[1]:
        raise BadLink("spent")
    return member, _next_of(loaded)


def member_for_reset(token: str) -> tuple[Member, str | None]:
    """The member a valid, unexpired, unused reset token names, and the page to go on to.

    Raises ``BadLink`` with the reason it cannot be used.
    """
    loaded = _load("reset-password", token, RESET_MAX_AGE)
    member = db.session.get(Member, loaded[0])
    if member is None or not member.is_active or _fingerprint(member.password_hash) != loaded[1]:
        raise BadLink("spent")
    return member, _next_of(loaded)

"""Member passwords: scrypt hashes, a minimum policy, and checks that take the same time
whether or not the account exists."""

from __future__ import annotations

from functools import cache

from flask import current_app, has_app_context
from werkzeug.security import check_password_hash, generate_password_hash

MIN_LENGTH = 12
MAX_LENGTH = 200


def password_problem(password: str, email: str = "") -> str | None:
    """The catalog key of what is wrong with ``password``, or None if it is acceptable."""
    if len(password) < MIN_LENGTH:
        return "members.error.password_short"
    if len(password) > MAX_LENGTH:
        return "members.error.password_long"
    if email and password.strip().casefold() == email.strip().casefold():
        return "members.error.password_is_email"
    return None


def hash_password(password: str) -> str:
    """A scrypt hash (werkzeug's default method and cost).

    A test app may set ``PASSWORD_HASH_METHOD`` (say ``scrypt:1024:8:1``) for speed: the cost
    is stored in each hash, so checking runs the same code. It is not read from the
    environment, so no deployment can lower it.
    """
    method = "scrypt"
    if has_app_context():
        method = current_app.config.get("PASSWORD_HASH_METHOD", method)
    return generate_password_hash(password, method=method)


@cache
def _dummy_hash() -> str:
    return hash_password("no account has this password, it only costs the same time")


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Check ``password``; with no stored hash, spend the same time and answer False."""
    if not stored_hash:
        check_password_hash(_dummy_hash(), password)
        return False
    return check_password_hash(stored_hash, password)

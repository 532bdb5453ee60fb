"""Creating members and changing what identifies them: the one place both the signup page
and the operators' CLI go through."""

from __future__ import annotations

from sqlalchemy import select

from gateway.auth.grants import end_member_grants
from gateway.db import db, utcnow
from gateway.members.models import Member
from gateway.members.passwords import hash_password, password_problem


class MemberError(ValueError):
    """A member cannot be created or changed; ``key`` names the catalog message and field."""

    def __init__(self, field: str, key: str) -> None:
        super().__init__(key)
        self.field = field
        self.key = key


def normalize_email(email: str) -> str:
    """Addresses compare case-insensitively in practice; they are stored lower-cased."""
    return email.strip().lower()


def find_by_email(email: str) -> Member | None:
    """The member with ``email``, if any."""
    return db.session.scalar(select(Member).where(Member.email == normalize_email(email)))


def create_member(
    email: str,
    display_name: str,
    password: str,
    locale: str = "it",
    skills: list[str] | None = None,
    municipio: int | None = None,
    is_admin: bool = False,
) -> Member:
    """Add an active member (not committed). Raises ``MemberError`` for a taken email or a
    weak password."""
    email = normalize_email(email)
    problem = password_problem(password, email)
    if problem:
        raise MemberError("password", problem)
    if find_by_email(email) is not None:
        raise MemberError("email", "members.error.email_taken")
    member = Member(
        email=email,
        display_name=display_name.strip(),
        password_hash=hash_password(password),
        locale=locale,
        skills=list(skills or []),
        municipio=municipio,
        is_admin=is_admin,
    )
    db.session.add(member)
    db.session.flush()
    return member


def set_password(member: Member, password: str) -> None:
    """Change the password, ending every login and token of the member (not committed).

    Whoever held the account before (a session, an app's tokens) loses it: the reset is
    how the owner of an address takes back an account someone else opened with it.
    """
    problem = password_problem(password, member.email)
    if problem:
        raise MemberError("password", problem)
    member.password_hash = hash_password(password)
    # Consents given before the address was ever confirmed may not have been the owner's.
    end_member_grants(member.id, forget_consents=not member.is_verified)


def disable_member(member: Member) -> None:
    """Stop the member from logging in and acting; every login and token ends (not committed)."""
    member.status = "disabled"
    end_member_grants(member.id)


def enable_member(member: Member) -> None:
    """Let a disabled member log in again (not committed); what was ended stays ended."""
    member.status = "active"


def mark_verified(member: Member) -> None:
    """The member proved they read mail at their address (not committed)."""
    if member.email_verified_at is None:
        member.email_verified_at = utcnow()

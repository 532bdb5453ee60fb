"""Creating members and changing what identifies them: the one place both the signup page
and the operators' CLI go through."""

from __future__ import annotations

from sqlalchemy import select

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
    """Change the password and end every other session of the member (not committed)."""
    problem = password_problem(password, member.email)
    if problem:
        raise MemberError("password", problem)
    member.password_hash = hash_password(password)
    member.session_epoch = (member.session_epoch or 0) + 1


def mark_verified(member: Member) -> None:
    """The member proved they read mail at their address (not committed)."""
    if member.email_verified_at is None:
        member.email_verified_at = utcnow()

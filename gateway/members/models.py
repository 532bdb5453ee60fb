"""The member row: identity and profile, shared by sign-on, ledger and sync."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base, UTCDateTime, utcnow

LOCALES = ("it", "en")
MEMBER_STATUSES = ("active", "disabled", "erased")


def new_id() -> str:
    """A random identifier for a new row (UUID4 as text: portable across backends)."""
    return str(uuid.uuid4())


class Member(Base):
    """A person registered through the gateway."""

    __tablename__ = "members"
    __table_args__ = (
        CheckConstraint("locale IN ('it', 'en')", name="locale"),
        CheckConstraint("status IN ('active', 'disabled', 'erased')", name="status"),
        CheckConstraint("municipio IS NULL OR (municipio BETWEEN 1 AND 9)", name="municipio"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # Stored lower-cased: addresses compare case-insensitively in practice.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    locale: Mapped[str] = mapped_column(String(2), default="it")
    municipio: Mapped[int | None] = mapped_column(SmallInteger)
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="active")
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    @property
    def is_active(self) -> bool:
        """Whether the member may log in and transact."""
        return self.status == "active"

    @property
    def is_verified(self) -> bool:
        """Whether the member proved they read mail at their address."""
        return self.email_verified_at is not None


class MemberSession(Base):
    """A browser's login to the gateway's own pages (members' pages, consent, admin).

    The browser holds a random id; only its SHA-256 is stored, so a copy of this table
    logs nobody in. Ending a session deletes its row, which ends it at once everywhere.
    """

    __tablename__ = "member_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    # When the member proved who they are (OIDC auth_time): to the microsecond, so that a
    # login made a moment after a request for a fresh one is recognised as fresh.
    authenticated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

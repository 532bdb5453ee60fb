"""The member row: identity and profile, shared by sign-on, ledger and sync."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, CheckConstraint, Integer, SmallInteger, String
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
    # Bumped by a password change or "log out everywhere": older sessions stop being valid.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    @property
    def is_active(self) -> bool:
        """Whether the member may log in and transact."""
        return self.status == "active"

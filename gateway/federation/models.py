"""Platforms, their webhook secrets, member links and consents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.crypto import decrypt_json, decrypt_text, encrypt_json, encrypt_text
from gateway.db import Base, UTCDateTime, utcnow
from gateway.members.models import new_id

LINK_STATES = ("pending", "active", "erasing", "erased", "failed")
# Webhook subscriptions ride the sync engine as platforms of this built-in connector (see
# ``gateway.webhooks``). No entry point registers it, so no timebank can be added with it, and
# building its connector fails loudly if a timebank path ever reaches such a platform.
WEBHOOKS_CONNECTOR = "webhooks"


class Platform(Base):
    """An external timebank the gateway federates with, through one connector."""

    __tablename__ = "platforms"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # The slug used in URLs (/callbacks/<name>) and on the command line.
    name: Mapped[str] = mapped_column(String(40), unique=True)
    display_name: Mapped[str] = mapped_column(String(120), default="")
    connector: Mapped[str] = mapped_column(String(40))
    base_url: Mapped[str] = mapped_column(String(500))
    credentials_encrypted: Mapped[str | None] = mapped_column(Text)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    max_concurrency: Mapped[int] = mapped_column(Integer, default=4)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    @property
    def is_timebank(self) -> bool:
        """False for the platform behind a webhook subscription."""
        return self.connector != WEBHOOKS_CONNECTOR

    @property
    def credentials(self) -> dict[str, Any]:
        """Decrypted credentials (client id and secret, tokens): never log them."""
        return decrypt_json(self.credentials_encrypted) if self.credentials_encrypted else {}

    @credentials.setter
    def credentials(self, value: dict[str, Any]) -> None:
        self.credentials_encrypted = encrypt_json(value) if value else None


def is_timebank() -> ColumnElement[bool]:
    """Platforms that are timebanks, not the platform behind a webhook subscription."""
    return Platform.connector != WEBHOOKS_CONNECTOR


class WebhookSecret(Base):
    """A secret that signs a platform's callbacks; several may be active while rotating.

    For a webhook subscription it is the secret that signs our events, and ``revoked_at`` may
    lie in the future: a rotated secret keeps signing beside the new one until then.
    """

    __tablename__ = "platform_webhook_secrets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    platform_id: Mapped[str] = mapped_column(
        ForeignKey("platforms.id", ondelete="CASCADE"), index=True
    )
    secret_encrypted: Mapped[str] = mapped_column(Text)
    # Last characters of the secret, so operators can tell secrets apart without seeing them.
    hint: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def secret(self) -> str:
        """The plaintext ``whsec_...`` secret."""
        return decrypt_text(self.secret_encrypted)

    @secret.setter
    def secret(self, value: str) -> None:
        self.secret_encrypted = encrypt_text(value)
        self.hint = value[-4:]


# A remote account belongs to one member's live link at a time. An erased link may keep the ids
# of an account the platform kept (so the member gets it back on connecting again) without
# stopping anyone from linking that account meanwhile.
_LIVE = text("state <> 'erased'")


class PlatformLink(Base):
    """A member's account on a platform: remote member and wallet ids, and the link's state."""

    __tablename__ = "platform_links"
    __table_args__ = (
        UniqueConstraint("member_id", "platform_id"),
        Index(
            "uq_platform_links_live_remote_member_id",
            "platform_id",
            "remote_member_id",
            unique=True,
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        ),
        Index(
            "uq_platform_links_live_remote_wallet_id",
            "platform_id",
            "remote_wallet_id",
            unique=True,
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        ),
        CheckConstraint(
            "state IN ('pending', 'active', 'erasing', 'erased', 'failed')", name="state"
        ),
        CheckConstraint("linked_via IN ('registration', 'oauth')", name="linked_via"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    platform_id: Mapped[str] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    remote_member_id: Mapped[str | None] = mapped_column(String(120))
    remote_wallet_id: Mapped[str | None] = mapped_column(String(120))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    linked_via: Mapped[str] = mapped_column(String(16), default="registration")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Consent(Base):
    """A member's consent to share named fields with a platform; withdrawn, never deleted."""

    __tablename__ = "consents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    platform_id: Mapped[str] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The version of the consent text the member saw, so the record says what was agreed.
    text_version: Mapped[str] = mapped_column(String(40))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

"""A webhook subscription: which events go to which URL (its platform row does the rest)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base, UTCDateTime, utcnow
from gateway.members.models import new_id


class WebhookSubscription(Base):
    """Events of the listed types go to the URL of ``platform_id`` (its ``base_url``).

    The platform row carries the URL, ``enabled``, the concurrency limit and, as
    ``WebhookSecret`` rows, the signing secrets; this row says which events and why.
    """

    __tablename__ = "webhook_subscriptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    platform_id: Mapped[str] = mapped_column(
        ForeignKey("platforms.id", ondelete="CASCADE"), unique=True
    )
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

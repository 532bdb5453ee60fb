"""Platform management: registering platforms, rotating their webhook secrets, enabling them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gateway.callbacks.signature import secret_key
from gateway.db import db, utcnow
from gateway.federation.models import Platform, WebhookSecret


class PlatformError(Exception):
    """A platform operation was refused; the message says why."""


def get_platform(name: str) -> Platform | None:
    """The platform called ``name``."""
    return db.session.scalar(select(Platform).where(Platform.name == name))


def active_secrets(platform: Platform) -> list[WebhookSecret]:
    """The platform's webhook secrets that still verify callbacks."""
    return list(
        db.session.scalars(
            select(WebhookSecret)
            .where(WebhookSecret.platform_id == platform.id, WebhookSecret.revoked_at.is_(None))
            .order_by(WebhookSecret.created_at)
        )
    )


def add_webhook_secret(platform: Platform, secret: str) -> WebhookSecret:
    """Add a secret (``whsec_<base64>``); the older ones keep verifying until revoked."""
    try:
        secret_key(secret)
    except ValueError as exc:
        raise PlatformError(str(exc)) from None
    row = WebhookSecret(platform_id=platform.id)
    row.secret = secret
    db.session.add(row)
    db.session.flush()
    return row


def revoke_webhook_secret(platform: Platform, hint: str) -> WebhookSecret:
    """Revoke the active secret whose hint (last characters) or id is ``hint``."""
    matches = [s for s in active_secrets(platform) if hint in (s.hint, s.id)]
    if len(matches) != 1:
        raise PlatformError(f"{len(matches)} active secrets match {hint!r}; name exactly one.")
    matches[0].revoked_at = utcnow()
    return matches[0]


def add_platform(
    name: str,
    connector: str,
    base_url: str,
    *,
    credentials: dict[str, Any] | None = None,
    webhook_secrets: list[str] | None = None,
    options: dict[str, Any] | None = None,
    display_name: str | None = None,
) -> Platform:
    """Register a platform served by ``connector`` (a key of the connector registry)."""
    from connectors.registry import NotRegistered, available_connectors, get_connector_class

    if get_platform(name) is not None:
        raise PlatformError(f"A platform named {name!r} exists already.")
    if not name.replace("-", "").replace("_", "").isalnum() or len(name) > 40:
        raise PlatformError("A platform name is letters, digits, '-' or '_' (at most 40).")
    try:
        get_connector_class(connector)
    except NotRegistered:
        known = ", ".join(sorted(available_connectors())) or "none"
        raise PlatformError(f"No connector {connector!r}; available: {known}.") from None
    if not base_url.startswith(("http://", "https://")):
        raise PlatformError("The base URL must start with http:// or https://.")
    platform = Platform(
        name=name,
        display_name=display_name or name,
        connector=connector,
        base_url=base_url.rstrip("/"),
        options=options or {},
    )
    platform.credentials = credentials or {}
    db.session.add(platform)
    db.session.flush()
    for secret in webhook_secrets or []:
        add_webhook_secret(platform, secret)
    return platform

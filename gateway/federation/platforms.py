"""Platform management: registering platforms, rotating their webhook secrets, enabling them.

A platform is checked with its connector before it is stored (``check_configuration``), and
where the connector can (``WebhookRegistration``) our callback URL is registered at the
platform, which answers with the secret that will sign its events (``register_webhook``).

A platform's ``updated_at`` is its version: every change to the row moves it (``onupdate``), and
so does every change to its webhook secrets (``_touch_platforms_of_changed_secrets``), in the
same transaction. ``callback_platform`` caches per process what verifying a callback needs (the
platform and its decrypted active secrets) under that version, and checks the version in the
database on every use: a revoked secret stops verifying in every process as soon as the revoking
transaction commits, without Redis, which only carries work.
"""

from __future__ import annotations

import base64
import secrets as random_secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, event, select
from sqlalchemy.orm import Session

from connectors.errors import ConnectorError
from connectors.interface import Connector, WebhookRegistration
from gateway.auth.minting import MINTED, TOKEN_SOURCE_OPTION
from gateway.callbacks.signature import SECRET_PREFIX, secret_key
from gateway.db import db, utcnow
from gateway.federation.models import Platform, WebhookSecret, is_timebank

_CACHE = "gateway.federation.callback_platforms"
# Built once and run on the connection: the check runs on every callback, so it stays cheap.
# A webhook subscription's platform receives no callbacks: its name answers as unknown.
_VERSION = select(Platform.id, Platform.enabled, Platform.updated_at).where(
    Platform.name == bindparam("name"), is_timebank()
)


class PlatformError(Exception):
    """A platform operation was refused; the message says why."""


def get_platform(name: str) -> Platform | None:
    """The timebank called ``name`` (webhook subscriptions are managed as such)."""
    return db.session.scalar(select(Platform).where(Platform.name == name, is_timebank()))


@dataclass(frozen=True)
class CallbackPlatform:
    """An enabled platform and its active webhook secrets (plaintext: never log them)."""

    # A copy attached to no session, so threads share it read-only.
    platform: Platform
    secrets: tuple[str, ...]
    version: datetime


def _detached_copy(platform: Platform) -> Platform:
    columns = Platform.__table__.columns.keys()
    return Platform(**{name: getattr(platform, name) for name in columns})


def _load_callback_platform(platform_id: str) -> CallbackPlatform | None:
    # The row before its secrets: a secret changed in between moves the version past the one
    # stored here, so the next request loads again (the reverse order could cache stale secrets
    # under a new version).
    platform = db.session.get(Platform, platform_id, populate_existing=True)
    if platform is None:
        return None
    return CallbackPlatform(
        platform=_detached_copy(platform),
        secrets=tuple(s.secret for s in active_secrets(platform)),
        version=platform.updated_at,
    )


def callback_platform(name: str) -> CallbackPlatform | None:
    """The enabled platform called ``name`` with its active secrets, or None.

    One small query checks the version; the platform row, its secrets and their decryption are
    read again only when it moved.
    """
    current = db.session.connection().execute(_VERSION, {"name": name}).first()
    if current is None or not current.enabled:
        return None
    cache: dict[str, CallbackPlatform] = current_app.extensions.setdefault(_CACHE, {})
    cached = cache.get(name)
    if cached is not None and (cached.platform.id, cached.version) == (
        current.id,
        current.updated_at,
    ):
        return cached
    loaded = _load_callback_platform(current.id)
    if loaded is None or not loaded.platform.enabled:
        return None
    cache[name] = loaded  # one assignment: atomic, so threads need no lock
    return loaded


def _next_version(previous: datetime | None) -> datetime:
    """Now, but always after ``previous``: two changes never share a version."""
    now = utcnow()
    if previous is not None and now <= previous:
        return previous + timedelta(microseconds=1)
    return now


@event.listens_for(Session, "before_flush")
def _touch_platforms_of_changed_secrets(session: Session, _context: Any, _instances: Any) -> None:
    """A secret added, revoked or deleted anywhere moves its platform's version."""
    changed = [
        obj
        for obj in (*session.new, *session.dirty, *session.deleted)
        if isinstance(obj, WebhookSecret)
    ]
    platform_ids = {s.platform_id for s in changed if s.platform_id is not None}
    for platform_id in platform_ids:
        platform = session.get(Platform, platform_id)
        if platform is not None:
            platform.updated_at = _next_version(platform.updated_at)


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
    kind = (options or {}).get(TOKEN_SOURCE_OPTION)
    if kind not in (None, MINTED):
        raise PlatformError(f"The option {TOKEN_SOURCE_OPTION} is {MINTED!r} or absent.")
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


def _connector_class(platform: Platform) -> type[Connector]:
    from connectors.registry import NotRegistered, PluginLoadError, get_connector_class

    try:
        return get_connector_class(platform.connector)
    except (NotRegistered, PluginLoadError) as exc:
        raise PlatformError(str(exc)) from None


def check_configuration(platform: Platform) -> None:
    """Refuse a configuration the platform's connector cannot work with (it says why)."""
    from gateway.sync.remote import platform_config

    try:
        _connector_class(platform).check_config(platform_config(platform))
    except (ConnectorError, ValueError, TypeError, KeyError) as exc:
        raise PlatformError(
            f"The {platform.connector} connector cannot use this configuration: {exc}"
        ) from None


def can_register_webhook(platform: Platform) -> bool:
    """Whether the platform's connector can point the platform's callbacks at us."""
    return issubclass(_connector_class(platform), WebhookRegistration)


def callback_url(name: str) -> str:
    """Where the platform ``name`` sends its events."""
    return f"{current_app.config['GATEWAY_BASE_URL']}/callbacks/{name}"


def new_webhook_secret() -> str:
    """A fresh ``whsec_`` secret (32 random bytes)."""
    return SECRET_PREFIX + base64.b64encode(random_secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class Registration:
    """Our callback URL as the platform now has it, and the stored secret that signs for it."""

    url: str
    secret: WebhookSecret
    new: bool  # False when the platform answered with a secret we held already


def register_webhook(platform: Platform, secret: str | None = None) -> Registration:
    """Register our callback URL at the platform and store the secret it answers with.

    ``secret`` proposes one (to rotate); a platform may answer with its own, which is the one
    stored. The older secrets stay active (events in flight are signed with them) until revoked.
    """
    from gateway.sync.remote import platform_config

    cls = _connector_class(platform)
    if not issubclass(cls, WebhookRegistration):
        raise PlatformError(f"The {platform.connector} connector cannot register webhooks.")
    url = callback_url(platform.name)
    try:
        connector = cls(platform_config(platform))
    except (ConnectorError, ValueError, TypeError, KeyError) as exc:
        raise PlatformError(
            f"The {platform.connector} connector cannot use this configuration: {exc}"
        ) from None
    try:
        endpoint = connector.register_webhook_endpoint(url, secret=secret)
    except ConnectorError as exc:
        raise PlatformError(f"{platform.name} did not register our callback URL: {exc}") from None
    finally:
        connector.close()
    held = {row.secret: row for row in active_secrets(platform)}
    if endpoint.secret in held:
        return Registration(endpoint.url, held[endpoint.secret], new=False)
    return Registration(endpoint.url, add_webhook_secret(platform, endpoint.secret), new=True)

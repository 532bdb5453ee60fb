"""Managing webhook subscriptions: add, list, disable, rotate the signing secret.

Each subscription is backed by a platform row of the ``webhooks`` connector (why: see
``gateway.webhooks``), and its secrets are ``WebhookSecret`` rows of that platform, made as
the callbacks' are (``new_webhook_secret``) and encrypted at rest the same way. The CLI and the
admin API call these functions, which write the audit row of each change (the CLI's actor is
``cli``).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import or_, select, update

from gateway.admin.models import AdminAction
from gateway.db import db, rows_affected, utcnow
from gateway.federation.models import WEBHOOKS_CONNECTOR, Platform, WebhookSecret
from gateway.federation.platforms import new_webhook_secret
from gateway.members.models import new_id
from gateway.sync.models import OutboxItem
from gateway.webhooks.models import WebhookSubscription
from schemas.vocabulary import WEBHOOK_EVENT_TYPES

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
DISABLED_REASON = "the webhook subscription was disabled"
DISABLED_CODE = "subscription_disabled"
MAX_URL_LENGTH = 500


class WebhookError(Exception):
    """A subscription operation was refused; ``field`` names the input at fault, if any."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Subscription:
    """A subscription with its platform row (the URL, whether enabled)."""

    row: WebhookSubscription
    platform: Platform


def _audit(actor: str, action: str, subscription_id: str, **details: Any) -> None:
    db.session.add(
        AdminAction(
            actor=actor,
            action=action,
            target_type="webhook_subscription",
            target_id=subscription_id,
            details=details,
        )
    )


# Addresses no receiver lives at, but a cloud's instance metadata (credentials) does: an
# operator's typo, or a stolen admin token, must not turn deliveries into requests to them.
# AWS serves its metadata over IPv6 at a unique local address, which is_link_local misses.
_METADATA_ADDRESSES = (ipaddress.ip_address("fd00:ec2::254"),)
# What C's inet_aton also reads as an IPv4 address, and so the HTTP client's resolver too:
# "2852039166", "0xa9fea9fe", "169.254.43518" all name 169.254.169.254.
_INET_ATON_FORM = re.compile(r"[0-9a-fA-FxX.]+")


def _address_refusal(host: str) -> str | None:
    """Why a literal address in a URL is refused, or None. Names are not resolved here:
    the website's name may not resolve from where an operator adds it."""
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(host)
    except ValueError:
        if not _INET_ATON_FORM.fullmatch(host):
            return None
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_link_local or address in _METADATA_ADDRESSES:
        return "a link-local or cloud metadata address"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return "an address no single receiver answers at"
    return None


def check_url(url: str) -> str:
    """The URL events are POSTed to: https, or http on loopback outside production."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError(f"The URL {url!r} must be an absolute https URL.", "url")
    if len(url) > MAX_URL_LENGTH:
        raise WebhookError(f"The URL is longer than {MAX_URL_LENGTH} characters.", "url")
    if parts.username or parts.password:
        raise WebhookError("The URL must not carry a user name or password.", "url")
    if parts.fragment:
        raise WebhookError("The URL must not have a fragment.", "url")
    refusal = _address_refusal(parts.hostname)
    if refusal:
        raise WebhookError(f"The URL {url!r} names {refusal}: the gateway never calls it.", "url")
    if parts.scheme == "http":
        local = parts.hostname in LOOPBACK_HOSTS
        if not local or current_app.config.get("GATEWAY_ENV") == "production":
            raise WebhookError(
                f"The URL {url!r} must use https (http only for localhost outside production).",
                "url",
            )
    return url


def check_events(events: Sequence[str]) -> list[str]:
    """The event types, each known and once, in the order given."""
    if not events:
        raise WebhookError("Name at least one event type.", "events")
    unknown = [e for e in events if e not in WEBHOOK_EVENT_TYPES]
    if unknown:
        raise WebhookError(
            f"Unknown event type(s): {', '.join(unknown)}; known: "
            f"{', '.join(WEBHOOK_EVENT_TYPES)}.",
            "events",
        )
    return list(dict.fromkeys(events))


def add_subscription(
    actor: str, url: str, events: Sequence[str], description: str = ""
) -> tuple[Subscription, str]:
    """Subscribe ``url`` to ``events`` (not committed); returns it with its new secret."""
    check_url(url)
    wanted = check_events(events)
    description = check_description(description)
    subscription_id = new_id()
    platform = Platform(
        # Platform names are slugs of at most 40 characters; this one names the subscription.
        name=f"webhook-{subscription_id[:12]}",
        display_name=f"Webhook {description or url}"[:120],
        connector=WEBHOOKS_CONNECTOR,
        base_url=url,
        options={},
    )
    db.session.add(platform)
    db.session.flush()
    row = WebhookSubscription(
        id=subscription_id,
        platform_id=platform.id,
        events=wanted,
        description=description,
    )
    db.session.add(row)
    secret = new_webhook_secret()
    stored = WebhookSecret(platform_id=platform.id)
    stored.secret = secret
    db.session.add(stored)
    db.session.flush()
    _audit(actor, "webhook.add", row.id, url=url, events=wanted, secret_hint=stored.hint)
    return Subscription(row, platform), secret


def list_subscriptions() -> list[Subscription]:
    """Every subscription, oldest first."""
    rows = db.session.execute(
        select(WebhookSubscription, Platform)
        .join(Platform, Platform.id == WebhookSubscription.platform_id)
        .order_by(WebhookSubscription.created_at, WebhookSubscription.id)
    ).all()
    return [Subscription(row, platform) for row, platform in rows]


def get_subscription(subscription_id: str) -> Subscription:
    """The subscription ``subscription_id`` (or WebhookError)."""
    row = db.session.get(WebhookSubscription, subscription_id)
    platform = db.session.get(Platform, row.platform_id) if row is not None else None
    if row is None or platform is None:
        raise WebhookError(f"No webhook subscription {subscription_id!r}.", "id")
    return Subscription(row, platform)


def disable_subscription(actor: str, subscription: Subscription) -> int:
    """Stop sending (not committed); events not sent yet are skipped. Returns how many."""
    if subscription.row.disabled_at is not None:
        raise WebhookError("The subscription is disabled already.")
    now = utcnow()
    subscription.row.disabled_at = now
    subscription.platform.enabled = False
    # Every row reaches an end: events nobody will send are skipped, with the reason.
    skipped = rows_affected(
        db.session.execute(
            update(OutboxItem)
            .where(
                OutboxItem.platform_id == subscription.platform.id,
                OutboxItem.state == "pending",
            )
            .values(
                state="skipped",
                skipped_reason=DISABLED_REASON,
                last_error_code=DISABLED_CODE,
                completed_at=now,
            ),
            execution_options={"synchronize_session": False},
        )
    )
    _audit(actor, "webhook.disable", subscription.row.id, events_skipped=skipped)
    return skipped


def enable_subscription(actor: str, subscription: Subscription) -> None:
    """Send again (not committed): new events are written from now on.

    The events skipped when it was disabled stay skipped, and the events that happened while
    it was disabled were never written: re-enabling replays nothing, since the receiver may
    have been moved or retired meanwhile. An operator who wants one of the skipped events
    sent retries it from the outbox page, filtered on the subscription's platform.
    """
    if subscription.row.disabled_at is None and subscription.platform.enabled:
        raise WebhookError("The subscription is enabled already.")
    disabled_at = subscription.row.disabled_at
    subscription.row.disabled_at = None
    subscription.platform.enabled = True
    _audit(
        actor,
        "webhook.enable",
        subscription.row.id,
        disabled_at=disabled_at.isoformat() if disabled_at else None,
    )


def check_description(description: str) -> str:
    """The description, trimmed, at most 200 characters."""
    if len(description) > 200:
        raise WebhookError("The description is longer than 200 characters.", "description")
    return description.strip()


def update_subscription(
    actor: str,
    subscription: Subscription,
    events: Sequence[str] | None = None,
    description: str | None = None,
) -> bool:
    """Change which events the subscription wants or its description (not committed);
    returns whether anything changed (an unchanged request writes no audit row).

    Only events written from now on follow the new list: rows already in the outbox are
    sent as they are, since each was wanted when its change happened.
    """
    wanted = check_events(events) if events is not None else None
    text = check_description(description) if description is not None else None
    row = subscription.row
    changes: dict[str, Any] = {}
    if wanted is not None and wanted != list(row.events or []):
        changes["events"] = {"before": list(row.events or []), "after": wanted}
        row.events = wanted
    if text is not None and text != row.description:
        changes["description"] = {"before": row.description, "after": text}
        row.description = text
        subscription.platform.display_name = f"Webhook {text or subscription.platform.base_url}"[
            :120
        ]
    if not changes:
        return False
    _audit(actor, "webhook.update", row.id, **changes)
    return True


def signing_secrets(platform_id: str, now: datetime | None = None) -> list[WebhookSecret]:
    """The secrets that sign the subscription's events now, newest first."""
    moment = now or utcnow()
    return list(
        db.session.scalars(
            select(WebhookSecret)
            .where(
                WebhookSecret.platform_id == platform_id,
                or_(WebhookSecret.revoked_at.is_(None), WebhookSecret.revoked_at > moment),
            )
            .order_by(WebhookSecret.created_at.desc(), WebhookSecret.id)
        )
    )


def rotate_secret(
    actor: str, subscription: Subscription, grace_seconds: int | None = None
) -> tuple[str, datetime]:
    """A new signing secret (not committed); the current ones sign beside it until the
    returned moment, so the receiver can switch without losing an event."""
    grace = (
        int(current_app.config.get("WEBHOOK_ROTATION_GRACE_SECONDS", 86400))
        if grace_seconds is None
        else grace_seconds
    )
    now = utcnow()
    until = now + timedelta(seconds=grace)
    for old in signing_secrets(subscription.platform.id, now):
        if old.revoked_at is None or old.revoked_at > until:
            old.revoked_at = until
    secret = new_webhook_secret()
    stored = WebhookSecret(platform_id=subscription.platform.id, created_at=now)
    stored.secret = secret
    db.session.add(stored)
    db.session.flush()
    _audit(
        actor,
        "webhook.rotate_secret",
        subscription.row.id,
        secret_hint=stored.hint,
        old_secrets_sign_until=until.isoformat(),
    )
    return secret, until


def describe(subscription: Subscription, secret: str | None = None) -> dict[str, Any]:
    """The subscription as the CLI's --json and the admin API show it (the secret only when
    just made: it is never shown again)."""
    row, platform = subscription.row, subscription.platform
    document: dict[str, Any] = {
        "id": row.id,
        "url": platform.base_url,
        "events": list(row.events or []),
        "description": row.description,
        "enabled": platform.enabled and row.disabled_at is None,
        "platform": platform.name,
        "created_at": row.created_at.isoformat(),
        "disabled_at": row.disabled_at.isoformat() if row.disabled_at else None,
        "secrets": [
            {
                "hint": s.hint,
                "created_at": s.created_at.isoformat(),
                "signs_until": s.revoked_at.isoformat() if s.revoked_at else None,
            }
            for s in signing_secrets(platform.id)
        ],
    }
    if secret is not None:
        document["secret"] = secret
    return document

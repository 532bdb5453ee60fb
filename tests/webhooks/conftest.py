"""Fixtures for webhook subscriptions: a subscriber, members with accounts, event rows."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select

from gateway.db import db
from gateway.sync.models import OutboxItem
from gateway.webhooks.subscriptions import add_subscription
from schemas.vocabulary import WEBHOOK_EVENT_TYPES

RECEIVER = "https://site.example/hooks/gateway"


@dataclass(frozen=True)
class Subscribed:
    """A committed subscription: its id, its platform's id and its signing secret."""

    id: str
    platform_id: str
    secret: str


def subscribe(
    url: str = RECEIVER, events: tuple[str, ...] = WEBHOOK_EVENT_TYPES, description: str = ""
) -> Subscribed:
    """Subscribe ``url`` to ``events`` (every type by default); committed."""
    subscription, secret = add_subscription("test", url, events, description)
    db.session.commit()
    return Subscribed(subscription.row.id, subscription.platform.id, secret)


def event_rows(platform_id: str) -> list[OutboxItem]:
    """The subscription's event rows, oldest first."""
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(OutboxItem)
            .where(OutboxItem.platform_id == platform_id, OutboxItem.kind == "event")
            .order_by(OutboxItem.created_at, OutboxItem.id)
        )
    )


def event_types(platform_id: str) -> list[str]:
    """The types of the subscription's event rows, oldest first."""
    return [row.payload["type"] for row in event_rows(platform_id)]


@pytest.fixture
def subscribed(app) -> Subscribed:
    """A subscription of RECEIVER to every event type."""
    with app.app_context():
        return subscribe()


# Shared fixtures: a timebank "tr" with two linked members whose callbacks tests sign
# (tests/callbacks), and the sandbox timebank as a real HTTP partner (tests/sync).
from tests.callbacks.conftest import linked, platform  # noqa: E402, F401
from tests.sync.sandbox_partner import sandbox_partner  # noqa: E402, F401

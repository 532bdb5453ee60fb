"""Fixtures: a platform with a webhook secret, and events signed by the standardwebhooks package."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
from standardwebhooks import Webhook

from gateway.db import db
from gateway.federation.models import PlatformLink
from gateway.federation.platforms import add_platform
from tests.factories import create_member

SECRET = "whsec_" + base64.b64encode(b"a-test-secret-of-32-bytes-length").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"another-secret-32-bytes-long!!!!").decode()


@pytest.fixture
def platform(app):
    with app.app_context():
        row = add_platform(
            "tr",
            "timerepublik",
            "https://tr.test/api",
            credentials={"client_id": "gw", "client_secret": "s"},
            webhook_secrets=[SECRET],
            options={"clearing_wallet_id": "w-clearing"},
        )
        db.session.commit()
        return row


@pytest.fixture
def linked(app, platform):
    """Two members linked to the platform, with wallets w-a and w-b."""
    with app.app_context():
        members = []
        for wallet in ("w-a", "w-b"):
            member = create_member()
            db.session.add(
                PlatformLink(
                    member_id=member.id,
                    platform_id=platform.id,
                    state="active",
                    remote_member_id=f"m-{wallet}",
                    remote_wallet_id=wallet,
                )
            )
            members.append(member)
        db.session.commit()
        return members


def transfer_event(
    transfer_id: str,
    *,
    payer: str = "w-a",
    payee: str = "w-b",
    minutes: int = 30,
    reversal_of: str | None = None,
    reference: str | None = None,
    event_id: str | None = None,
) -> dict:
    """A partner Event carrying a transfer."""
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex}",
        "type": "transfer.reversed" if reversal_of else "transfer.completed",
        "created_at": "2026-11-24T10:00:00Z",
        "data": {
            "id": transfer_id,
            "payer_wallet_id": payer,
            "payee_wallet_id": payee,
            "minutes": minutes,
            "description": "helped with shopping",
            "external_reference": reference or f"tr-{transfer_id}",
            "status": "completed",
            "reversal_of": reversal_of,
            "created_at": "2026-11-24T10:00:00Z",
        },
    }


def signed(event: dict, secret: str = SECRET, timestamp: float | None = None) -> tuple[bytes, dict]:
    """The body and headers a sender signing with the standardwebhooks package would send."""
    from datetime import UTC, datetime

    body = json.dumps(event).encode()
    moment = datetime.fromtimestamp(timestamp or time.time(), tz=UTC)
    signature = Webhook(secret).sign(event["id"], moment, body.decode())
    return body, {
        "webhook-id": event["id"],
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature,
        "Content-Type": "application/json",
    }

"""The sandbox timebank as the partner of sync tests: a real HTTP server honouring the contract
(Idempotency-Key replay, reversals, balances), with faults switched on and off at will, and the
helpers that drive the real outbox drain against it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from sqlalchemy import func, select, update

from connectors.interface import PlatformConfig
from connectors.timerepublik import TimeRepublikConnector
from gateway.db import db, utcnow
from gateway.devsetup import SANDBOX_CREDENTIALS
from gateway.federation.models import Platform, PlatformLink
from gateway.sync.drain import drain
from gateway.sync.models import OutboxItem
from gateway.sync.outbox import record_effect
from gateway_sandbox.app import create_sandbox_app
from gateway_sandbox.server import SandboxServer
from tests.factories import create_member

# Drain rounds before a test calls the outbox stuck: each round makes every pending row due.
MAX_ROUNDS = 40


@dataclass
class Partner:
    """A running sandbox and a direct connector to read it as the partner sees itself."""

    server: SandboxServer

    def __post_init__(self) -> None:
        self.reader = TimeRepublikConnector(
            PlatformConfig(name="reader", base_url=self.server.url, credentials=SANDBOX_CREDENTIALS)
        )

    def faults(self, **settings: Any) -> None:
        """Switch faults on (``clear=True`` first switches every other one off)."""
        requests.post(
            f"{self.server.url}/_sandbox/faults", json=settings, timeout=5
        ).raise_for_status()

    def clear(self) -> None:
        """No more faults."""
        self.faults(clear=True)

    def reset(self) -> None:
        """Forget every member and transfer (and every fault)."""
        requests.post(f"{self.server.url}/_sandbox/reset", timeout=5).raise_for_status()

    def balance(self, wallet_id: str) -> int:
        """A wallet's balance in minutes, as the partner has it."""
        return self.reader.get_balance(wallet_id).minutes


@pytest.fixture
def sandbox_partner(tmp_path) -> Iterator[Partner]:
    """The sandbox timebank on a loopback port, with a credit limit no test reaches."""
    app = create_sandbox_app(
        {
            "SANDBOX_DATA_DIR": str(tmp_path / "sandbox"),
            "SANDBOX_CLIENT_ID": SANDBOX_CREDENTIALS["client_id"],
            "SANDBOX_CLIENT_SECRET": SANDBOX_CREDENTIALS["client_secret"],
            "SANDBOX_CREDIT_LIMIT_MINUTES": 1_000_000,
        }
    )
    server = SandboxServer(app).start()
    try:
        yield Partner(server)
    finally:
        server.stop()


def add_sandbox_platform(partner: Partner, name: str = "sandbox") -> Platform:
    """A platform row on the sandbox; no webhooks (these tests read the partner directly)."""
    platform = Platform(name=name, connector="timerepublik", base_url=partner.server.url)
    platform.credentials = dict(SANDBOX_CREDENTIALS)
    db.session.add(platform)
    db.session.commit()
    return platform


def open_rows(platform_id: str) -> int:
    """Rows of the platform still pending or running."""
    db.session.rollback()
    return db.session.scalar(
        select(func.count())
        .select_from(OutboxItem)
        .where(OutboxItem.platform_id == platform_id, OutboxItem.state.in_(("pending", "running")))
    )


def drain_all(platform_id: str, rounds: int = MAX_ROUNDS) -> None:
    """Deliver until no row of the platform is pending: backoffs are cut short, every round.

    Only rows waiting for a dependency that never ends can stay pending: the caller's
    assertions say whether that is right.
    """
    for _ in range(rounds):
        if not open_rows(platform_id):
            return
        db.session.execute(
            update(OutboxItem)
            .where(OutboxItem.platform_id == platform_id, OutboxItem.state == "pending")
            .values(next_attempt_at=utcnow())
        )
        db.session.commit()
        drain(platform_id)
    raise AssertionError(f"rows still open after {rounds} drains")


def drain_once(platform_id: str) -> None:
    """One drain of whatever is due now (backoffs cut short), faults and all."""
    db.session.execute(
        update(OutboxItem)
        .where(OutboxItem.platform_id == platform_id, OutboxItem.state == "pending")
        .values(next_attempt_at=utcnow())
    )
    db.session.commit()
    drain(platform_id)
    db.session.rollback()


def linked_members(platform: Platform, count: int) -> list[tuple[str, str]]:
    """``count`` members registered on the platform through the outbox: (member id, wallet)."""
    ids = []
    for _ in range(count):
        member = create_member()
        db.session.add(PlatformLink(member_id=member.id, platform_id=platform.id))
        record_effect(platform_id=platform.id, kind="register_member", member_id=member.id)
        db.session.commit()
        ids.append(member.id)
    drain_all(platform.id)
    wallets = dict(
        db.session.execute(
            select(PlatformLink.member_id, PlatformLink.remote_wallet_id).where(
                PlatformLink.platform_id == platform.id, PlatformLink.state == "active"
            )
        ).all()
    )
    assert set(wallets) >= set(ids), "a registration did not complete"
    return [(member_id, wallets[member_id]) for member_id in ids]

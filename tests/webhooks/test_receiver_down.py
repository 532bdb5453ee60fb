"""Done when: a receiver that verifies with the reference library gets every event type, each
exactly once, after being down during the postings; and each member's events in order.

The receiver is a real HTTP server on a loopback port; the gateway's real drain delivers to it
(backoffs cut short between rounds), through its circuit breaker.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gateway.db import db
from gateway.federation import consent
from gateway.ledger import services as ledger
from gateway.members import accounts
from gateway.sync.models import SyncAttempt
from schemas.vocabulary import WEBHOOK_EVENT_TYPES
from tests.sync.sandbox_partner import add_sandbox_platform, drain_all, drain_once, open_rows
from tests.webhooks.conftest import event_rows, subscribe

PASSWORD = "a long enough passphrase 42"


class Receiver:
    """Answers 503 while down; once up, verifies each event and records it."""

    def __init__(self) -> None:
        self.secret = ""
        self.down = True
        self.refused = 0
        self.received: list[dict] = []
        self.forged = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.down:
                    with receiver.lock:
                        receiver.refused += 1
                    self.send_response(503)
                    self.end_headers()
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    event = Webhook(receiver.secret).verify(body, headers)
                except WebhookVerificationError:
                    with receiver.lock:
                        receiver.forged += 1
                    self.send_response(400)
                    self.end_headers()
                    return
                assert headers["webhook-id"] == event["id"]
                with receiver.lock:
                    receiver.received.append(event)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def fast_app(make_app):
    """Backoff and circuit cooldown short enough for a test to wait them out."""
    return make_app(
        SYNC_BACKOFF_BASE_SECONDS=0.05,
        SYNC_CIRCUIT_COOLDOWN_SECONDS=1,
        SYNC_CIRCUIT_THRESHOLD=3,
        WEBHOOK_BACKOFF_CAP_SECONDS=0.2,
    )


def _postings_while_down(partner) -> dict[str, str]:
    """Every kind of change, with a timebank on the sandbox; returns the members' ids."""
    timebank = add_sandbox_platform(partner)
    anna = accounts.create_member("anna@example.org", "Anna", PASSWORD)
    bruno = accounts.create_member("bruno@example.org", "Bruno", PASSWORD)
    db.session.commit()
    accounts.mark_verified(anna)
    db.session.commit()
    consent.grant(anna, timebank)
    db.session.commit()
    drain_all(timebank.id)  # anna's registration: platform.linked
    anna_account = ledger.account_for_member(anna.id).id
    bruno_account = ledger.account_for_member(bruno.id).id
    transfers = []
    for minutes in (10, 20, 30):
        transfers.append(
            ledger.post_transfer(
                payer_account_id=anna_account,
                payee_account_id=bruno_account,
                minutes=minutes,
                description=f"help {minutes}",
            ).id
        )
        db.session.commit()
    ledger.post_transfer(
        payer_account_id=ledger.clearing_account(timebank.id).id,
        payee_account_id=anna_account,
        minutes=45,
        description="hours from the timebank",
        source="callback",
        external=(timebank.id, "sandbox-transfer-1"),
    )
    db.session.commit()
    ledger.reverse_transaction(transfers[0], reason="posted twice")
    db.session.commit()
    consent.withdraw(anna, timebank)
    db.session.commit()
    accounts.erase_member(bruno)
    db.session.commit()
    drain_all(timebank.id)
    return {"anna": anna.id, "bruno": bruno.id}


def test_a_receiver_down_during_the_postings_gets_every_event_once_in_order(
    fast_app, receiver, sandbox_partner
):
    app = fast_app
    with app.app_context():
        subscribed = subscribe(receiver.url)
        receiver.secret = subscribed.secret
        members = _postings_while_down(sandbox_partner)
        written = event_rows(subscribed.platform_id)
        assert {row.payload["type"] for row in written} == set(WEBHOOK_EVENT_TYPES)

        # Down: the drain tries, fails, backs off, and the circuit opens.
        for _ in range(4):
            drain_once(subscribed.platform_id)
        assert receiver.refused >= 3
        assert receiver.received == []
        assert db.session.scalar(
            select(SyncAttempt.id)
            .where(
                SyncAttempt.platform_id == subscribed.platform_id, SyncAttempt.outcome == "retry"
            )
            .limit(1)
        )

        # Back: every event arrives, the circuit lets the probe through, then the rest.
        receiver.down = False
        deadline = time.monotonic() + 60
        while open_rows(subscribed.platform_id) and time.monotonic() < deadline:
            drain_once(subscribed.platform_id)
            time.sleep(0.1)
        rows = event_rows(subscribed.platform_id)
        assert {row.state for row in rows} == {"succeeded"}, [
            (row.state, row.last_error) for row in rows if row.state != "succeeded"
        ]
        order_written = {
            member_id: [r.payload["id"] for r in rows if r.member_id == member_id]
            for member_id in members.values()
        }

    assert receiver.forged == 0
    ids = [event["id"] for event in receiver.received]
    assert len(ids) == len(set(ids)) == len(rows), "each event exactly once"
    assert Counter(event["type"] for event in receiver.received) == Counter(
        row.payload["type"] for row in rows
    )
    assert {event["type"] for event in receiver.received} == set(WEBHOOK_EVENT_TYPES)
    by_id = {row.payload["id"]: row for row in rows}
    for member_id, expected in order_written.items():
        arrived = [e["id"] for e in receiver.received if by_id[e["id"]].member_id == member_id]
        assert arrived == expected, f"events of {member_id} out of order"
    balances = [
        e["data"]["balance_minutes"]
        for e in receiver.received
        if e["type"] == "balance.changed" and e["data"]["member_id"] == members["anna"]
    ]
    assert balances == [-10, -30, -60, -15, -5]

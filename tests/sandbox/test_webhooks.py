"""Webhooks: signed per Standard Webhooks (checked with the reference package), retried,
and duplicated or reordered on demand."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from connectors.errors import PermanentError
from connectors.interface import MemberData, TransferData
from gateway_sandbox.webhooks import new_secret, sign
from tests.sandbox.conftest import wait_for

ADA = MemberData("m-1", "ada@example.org", "Ada")


def _setup(sandbox, tr, receiver):
    endpoint = tr.register_webhook_endpoint(receiver.url)
    ada = tr.register_member(ADA, "reg-1")
    return endpoint, ada


def _pay(sandbox, tr, ada, ref: str, minutes: int = 30):
    data = TransferData(sandbox.clearing_wallet(), ada.wallet_id, minutes, "Aiuto", ref)
    return tr.create_transfer(data, f"push-{ref}")


def test_sign_matches_the_reference_implementation():
    secret = new_secret()
    now = datetime.now(UTC)
    signature = sign(secret, "msg_1", int(now.timestamp()), b'{"a":1}')
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    assert Webhook(secret).verify(b'{"a":1}', headers) == {"a": 1}
    assert Webhook(secret).sign("msg_1", now, '{"a":1}') == signature
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"a":2}', headers)


def test_events_arrive_signed_and_parse(sandbox, tr, receiver):
    endpoint, ada = _setup(sandbox, tr, receiver)
    assert endpoint.secret.startswith("whsec_")
    sent = _pay(sandbox, tr, ada, "gw-txn-1")
    ((headers, body),) = receiver.wait(1)
    payload = Webhook(endpoint.secret).verify(body, headers)
    assert payload["type"] == "transfer.completed"
    assert payload["id"] == headers["Webhook-Id"]
    event = tr.parse_callback(headers, body)
    assert (event.type, event.transfer.id, event.transfer.minutes) == (
        "transfer.completed",
        sent.id,
        30,
    )
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)  # another secret does not verify


def test_reversal_update_and_erase_events(sandbox, tr, receiver):
    endpoint, ada = _setup(sandbox, tr, receiver)
    sent = _pay(sandbox, tr, ada, "gw-txn-1")
    reversal = tr.reverse_transfer(sent.id, "rev-1")
    tr.update_member(ada.id, MemberData("m-1", "ada@example.org", "Ada L."), "upd-1")
    tr.erase_member(ada.id, "erase-1")
    deliveries = receiver.wait(4)
    events = [tr.parse_callback(h, b) for h, b in deliveries]
    assert [e.type for e in events] == [
        "transfer.completed",
        "transfer.reversed",
        "member.updated",
        "member.erased",
    ]
    assert events[1].transfer.id == reversal.id
    assert events[1].transfer.reversal_of == sent.id
    assert events[3].member.status == "erased"
    for headers, body in deliveries:
        Webhook(endpoint.secret).verify(body, headers)


def test_failed_deliveries_are_retried_with_the_same_id(sandbox, tr, receiver):
    receiver.statuses = [500, 503]
    _, ada = _setup(sandbox, tr, receiver)
    _pay(sandbox, tr, ada, "gw-txn-1")
    deliveries = receiver.wait(3)
    assert len({h["Webhook-Id"] for h, _ in deliveries}) == 1
    assert len({b for _, b in deliveries}) == 1  # the same bytes every time
    wait_for(lambda: sandbox.control("GET", "deliveries")["data"][0]["state"] == "delivered")
    row = sandbox.control("GET", "deliveries")["data"][0]
    assert (row["attempts"], row["last_status"]) == (3, 204)


def test_gives_up_after_max_attempts(tmp_path, receiver):
    from tests.sandbox.conftest import start_sandbox

    running = start_sandbox(tmp_path / "s", SANDBOX_WEBHOOK_MAX_ATTEMPTS="2")
    try:
        connector = running.connector()
        receiver.statuses = [500] * 10
        connector.register_webhook_endpoint(receiver.url)
        ada = connector.register_member(ADA, "reg-1")
        _pay(running, connector, ada, "r1")
        wait_for(lambda: running.control("GET", "deliveries")["data"][0]["state"] == "failed")
        row = running.control("GET", "deliveries")["data"][0]
        assert (row["attempts"], row["last_status"]) == (2, 500)
        connector.close()
    finally:
        running.server.stop()
    assert running.contract_errors == []


def test_duplicate_webhooks_fault(sandbox, tr, receiver):
    _, ada = _setup(sandbox, tr, receiver)
    sandbox.faults(duplicate_webhooks=True)
    _pay(sandbox, tr, ada, "gw-txn-1")
    deliveries = receiver.wait(2)
    assert deliveries[0][0]["Webhook-Id"] == deliveries[1][0]["Webhook-Id"]


def test_reordered_webhooks_fault(sandbox, tr, receiver):
    _, ada = _setup(sandbox, tr, receiver)
    sandbox.faults(reorder_webhooks=True, reorder_window_ms=400)
    first = _pay(sandbox, tr, ada, "gw-txn-1")
    second = _pay(sandbox, tr, ada, "gw-txn-2")
    deliveries = receiver.wait(2)
    received = [json.loads(body)["data"]["id"] for _, body in deliveries]
    assert received == [second.id, first.id]


def test_events_filter_and_secret_rotation(sandbox, tr, receiver):
    first = tr.register_webhook_endpoint(receiver.url, events=["member.erased"])
    same = tr.register_webhook_endpoint(receiver.url, events=["member.erased"])
    assert same.secret == first.secret  # kept unless a new one is given
    rotated = new_secret()
    assert tr.register_webhook_endpoint(receiver.url, ["member.erased"], rotated).secret == rotated
    ada = tr.register_member(ADA, "reg-1")
    _pay(sandbox, tr, ada, "gw-txn-1")  # not subscribed
    tr.erase_member(ada.id, "erase-1")
    ((headers, body),) = receiver.wait(1)
    assert json.loads(body)["type"] == "member.erased"
    Webhook(rotated).verify(body, headers)


@pytest.mark.parametrize("url", ["http://192.0.2.10/cb", "ftp://127.0.0.1/cb", "not a url"])
def test_only_loopback_endpoints_are_accepted(sandbox, tr, url):
    with pytest.raises(PermanentError) as caught:
        tr.register_webhook_endpoint(url)
    assert caught.value.code == "validation_error"


def test_a_duplicate_share_of_one_sends_every_event_twice(sandbox, tr, receiver):
    _, ada = _setup(sandbox, tr, receiver)
    sandbox.faults(duplicate_webhook_rate=1.0)
    _pay(sandbox, tr, ada, "gw-txn-1")
    deliveries = receiver.wait(2)
    assert deliveries[0][0]["Webhook-Id"] == deliveries[1][0]["Webhook-Id"]
    assert sandbox.control("GET", "faults/injected") == {"duplicated_webhook": 1}


def test_a_held_back_event_is_overtaken_by_the_next(sandbox, tr, receiver):
    _, ada = _setup(sandbox, tr, receiver)
    sandbox.faults(reorder_webhook_rate=1.0, reorder_window_ms=600)
    first = _pay(sandbox, tr, ada, "gw-txn-1")
    sandbox.faults(reorder_webhook_rate=0.0)
    second = _pay(sandbox, tr, ada, "gw-txn-2")
    deliveries = receiver.wait(2)
    received = [json.loads(body)["data"]["id"] for _, body in deliveries]
    assert received == [second.id, first.id]
    assert sandbox.control("GET", "faults/injected") == {"reordered_webhook": 1}


def test_the_retry_schedule_says_when_the_partner_gives_up(tmp_path):
    from tests.sandbox.conftest import start_sandbox

    running = start_sandbox(
        tmp_path / "s",
        SANDBOX_WEBHOOK_MAX_ATTEMPTS="4",
        SANDBOX_WEBHOOK_RETRY_BASE_SECONDS="0.5",
        SANDBOX_WEBHOOK_MAX_BACKOFF_SECONDS="1.5",
    )
    try:
        schedule = running.control("GET", "webhooks")
    finally:
        running.server.stop()
    assert schedule == {
        "max_attempts": 4,
        "retry_waits_seconds": [0.5, 1.0, 1.5],
        "gives_up_after_seconds": 3.0,
    }

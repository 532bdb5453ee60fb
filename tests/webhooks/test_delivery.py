"""Delivering events: signed as Standard Webhooks, and every answer classified for the engine."""

from __future__ import annotations

import json

import pytest
import requests
import responses
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from gateway.db import db
from gateway.members import accounts
from gateway.sync.drain import drain
from gateway.sync.models import SyncAttempt
from gateway.webhooks.subscriptions import get_subscription, rotate_secret
from tests.sync.sandbox_partner import drain_once
from tests.webhooks.conftest import RECEIVER, event_rows

PASSWORD = "a long enough passphrase 42"


def _one_event() -> None:
    accounts.create_member("someone@example.org", "Someone", PASSWORD)
    db.session.commit()


def _attempts(platform_id: str) -> list[SyncAttempt]:
    return list(
        db.session.scalars(
            select(SyncAttempt)
            .where(SyncAttempt.platform_id == platform_id)
            .order_by(SyncAttempt.started_at)
        )
    )


@responses.activate
def test_an_event_is_signed_so_the_reference_library_verifies_it(app, subscribed):
    responses.post(RECEIVER, status=204)
    with app.app_context():
        _one_event()
        assert drain(subscribed.platform_id) == "1 row(s) settled"
        (row,) = event_rows(subscribed.platform_id)
        assert row.state == "succeeded"
    (call,) = responses.calls
    request = call.request
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["content-type"] == "application/json"
    assert headers["webhook-id"] == row.payload["id"]
    verified = Webhook(subscribed.secret).verify(request.body, headers)
    assert verified["type"] == "member.created"
    assert verified == row.payload


@responses.activate
def test_the_webhook_id_is_the_same_on_every_retry(app, subscribed):
    responses.post(RECEIVER, status=503)
    responses.post(RECEIVER, status=200, body="ok")
    with app.app_context():
        _one_event()
        drain_once(subscribed.platform_id)
        drain_once(subscribed.platform_id)
        (row,) = event_rows(subscribed.platform_id)
        assert row.state == "succeeded"
    ids = {call.request.headers["webhook-id"] for call in responses.calls}
    assert len(responses.calls) == 2
    assert ids == {row.payload["id"]}


@pytest.mark.parametrize(
    ("answer", "state", "code"),
    [
        ({"status": 503}, "pending", "RetryableError"),
        ({"status": 500}, "pending", "RetryableError"),
        ({"status": 408}, "pending", "RetryableError"),
        ({"body": requests.ConnectionError("refused")}, "pending", "RetryableError"),
        ({"body": requests.ReadTimeout("slow")}, "pending", "RetryableError"),
        ({"status": 429, "headers": {"Retry-After": "120"}}, "pending", "throttled"),
        ({"status": 400, "body": "bad event shape"}, "dead", "http_400"),
        ({"status": 404}, "dead", "http_404"),
        ({"status": 409}, "dead", "http_409"),
        ({"status": 410}, "dead", "http_410"),
        ({"status": 401}, "dead", "http_401"),
        (
            {"status": 302, "headers": {"Location": "https://else.example/"}},
            "dead",
            "unexpected_redirect",
        ),
    ],
)
@responses.activate
def test_answers_are_classified(app, subscribed, answer, state, code):
    responses.post(RECEIVER, **answer)
    with app.app_context():
        _one_event()
        drain(subscribed.platform_id)
        (row,) = event_rows(subscribed.platform_id)
        (attempt,) = _attempts(subscribed.platform_id)
        assert (row.state, row.last_error_code) == (state, code)
        assert attempt.error_code == code
        if code == "throttled":
            assert row.attempts == 0  # a 429 spends no attempt
            assert (row.next_attempt_at - attempt.started_at).total_seconds() >= 119
        if state == "dead":
            assert row.last_error.startswith(f"the receiver answered {answer.get('status')}")
            assert subscribed.secret not in row.last_error
    if code == "http_400":
        assert "bad event shape" in row.last_error


@responses.activate
def test_a_redirect_is_never_followed(app, subscribed):
    responses.post(RECEIVER, status=307, headers={"Location": "https://else.example/"})
    responses.post("https://else.example/", status=200)
    with app.app_context():
        _one_event()
        drain(subscribed.platform_id)
    assert [c.request.url for c in responses.calls] == [RECEIVER]


def _delivered_after_rotation(app, subscribed, grace_seconds: int) -> tuple[str, bytes, dict]:
    """Rotate the secret with that grace, deliver one event; the new secret and the request."""
    responses.post(RECEIVER, status=200)
    with app.app_context():
        new_secret, _until = rotate_secret("test", get_subscription(subscribed.id), grace_seconds)
        db.session.commit()
        _one_event()
        drain(subscribed.platform_id)
    request = responses.calls[0].request
    return new_secret, request.body, {k.lower(): v for k, v in request.headers.items()}


@responses.activate
def test_during_a_rotation_both_secrets_sign(app, subscribed):
    new_secret, body, headers = _delivered_after_rotation(app, subscribed, 3600)
    assert len(headers["webhook-signature"].split()) == 2
    assert Webhook(subscribed.secret).verify(body, headers)
    assert Webhook(new_secret).verify(body, headers)


@responses.activate
def test_after_the_grace_period_only_the_new_secret_signs(app, subscribed):
    new_secret, body, headers = _delivered_after_rotation(app, subscribed, 0)
    assert len(headers["webhook-signature"].split()) == 1
    assert Webhook(new_secret).verify(body, headers)
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(subscribed.secret).verify(body, headers)


@responses.activate
def test_the_body_is_the_event_json(app, subscribed):
    responses.post(RECEIVER, status=200)
    with app.app_context():
        _one_event()
        drain(subscribed.platform_id)
    event = json.loads(responses.calls[0].request.body)
    assert event["data"]["email"] == "someone@example.org"

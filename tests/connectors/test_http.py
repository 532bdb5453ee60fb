"""The shared HTTP client: URL joining, timeouts, and the failure table, case by case."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
import responses

from connectors.errors import (
    AuthError,
    ConflictError,
    ConnectorError,
    PermanentError,
    RateLimitedError,
    RetryableError,
)
from connectors.http import (
    DEFAULT_TIMEOUT,
    HttpClient,
    error_for_exception,
    parse_retry_after,
    segment,
)

BASE = "https://platform.test/api"


class CountingTokens:
    """A token source that hands out tok-1, tok-2, ... and counts invalidations."""

    def __init__(self) -> None:
        self.issued = 0
        self.invalidated = 0
        self.current: str | None = None

    def token(self) -> str:
        if self.current is None:
            self.issued += 1
            self.current = f"tok-{self.issued}"
        return self.current

    def invalidate(self) -> None:
        self.invalidated += 1
        self.current = None


@pytest.fixture
def client() -> HttpClient:
    return HttpClient(BASE)


@pytest.mark.parametrize("base", [BASE, BASE + "/"])
def test_paths_join_under_the_base_url(mock, base):
    mock.get(f"{BASE}/v1/things", json={"ok": True})
    reply = HttpClient(base).request("GET", "/v1/things")
    assert reply.status == 200
    assert reply.body == {"ok": True}


def test_default_timeouts_are_connect_5_read_30(mock, client):
    mock.get(f"{BASE}/x", json={})
    client.request("GET", "x")
    assert DEFAULT_TIMEOUT == (5.0, 30.0)
    assert mock.calls[0].request.req_kwargs["timeout"] == (5.0, 30.0)


def test_json_is_sent_with_its_content_type(mock, client):
    mock.post(f"{BASE}/x", status=201, json={"id": "1"})
    client.request("POST", "x", json={"a": 1}, headers={"Idempotency-Key": "k"})
    sent = mock.calls[0].request
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["Idempotency-Key"] == "k"
    assert sent.body == b'{"a": 1}'


def test_empty_answer_is_none(mock, client):
    mock.delete(f"{BASE}/x", status=204)
    assert client.request("DELETE", "x").body is None


def test_ids_cannot_climb_out_of_their_path():
    assert segment("a/b?c") == "a%2Fb%3Fc"
    for bad in ("", ".", ".."):
        with pytest.raises(PermanentError):
            segment(bad)


def test_base_url_must_be_http():
    with pytest.raises(PermanentError) as caught:
        HttpClient("ftp://example.test")
    assert caught.value.code == "misconfigured"


@pytest.mark.parametrize(
    ("status", "body", "error_class", "code"),
    [
        (400, {}, PermanentError, "http_400"),
        (
            400,
            {"type": "x", "title": "Bad", "status": 400, "code": "bad_field"},
            PermanentError,
            "bad_field",
        ),
        (401, {}, AuthError, "unauthorized"),
        (403, {}, AuthError, "forbidden"),
        (404, {"title": "Not Found"}, PermanentError, "http_404"),
        (408, {}, RetryableError, None),
        (409, {"code": "member_exists"}, ConflictError, "member_exists"),
        (409, {}, ConflictError, "conflict"),
        (422, {"code": "insufficient_balance"}, PermanentError, "insufficient_balance"),
        (425, {}, RetryableError, None),
        (500, {}, RetryableError, None),
        (502, {}, RetryableError, None),
        (503, {}, RetryableError, None),
        (504, {}, RetryableError, None),
        (301, {}, PermanentError, "unexpected_redirect"),
        (
            400,
            {"errors": [{"status": "400", "code": "BadRequest", "detail": "no"}]},
            PermanentError,
            "BadRequest",
        ),
    ],
)
def test_each_status_becomes_its_typed_error(mock, client, status, body, error_class, code):
    mock.post(f"{BASE}/x", status=status, json=body, content_type="application/problem+json")
    with pytest.raises(ConnectorError) as caught:
        client.request("POST", "x", json={})
    error = caught.value
    assert type(error) is error_class
    assert error.status == status
    if code is not None:
        assert error.code == code
    assert f"POST x answered {status}" in str(error)


def test_conflict_carries_the_existing_id(mock, client):
    mock.post(f"{BASE}/x", status=409, json={"code": "duplicate_reference", "existing_id": "t_9"})
    with pytest.raises(ConflictError) as caught:
        client.request("POST", "x", json={})
    assert caught.value.existing_id == "t_9"
    assert isinstance(caught.value, PermanentError)  # never retried by code that knows only that


def test_429_carries_retry_after_seconds(mock, client):
    mock.get(f"{BASE}/x", status=429, headers={"Retry-After": "7"}, json={})
    with pytest.raises(RateLimitedError) as caught:
        client.request("GET", "x")
    assert isinstance(caught.value, RetryableError)  # code that knows only that retries it
    assert caught.value.retry_after == 7.0
    assert caught.value.status == 429


def test_429_with_an_http_date(mock, client):
    later = datetime.now(UTC) + timedelta(seconds=120)
    mock.get(f"{BASE}/x", status=429, headers={"Retry-After": format_datetime(later, usegmt=True)})
    with pytest.raises(RetryableError) as caught:
        client.request("GET", "x")
    assert 100 <= caught.value.retry_after <= 120


def test_503_honours_retry_after_too(mock, client):
    mock.get(f"{BASE}/x", status=503, headers={"Retry-After": "30"})
    with pytest.raises(RetryableError) as caught:
        client.request("GET", "x")
    assert caught.value.retry_after == 30.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        (" 5 ", 5.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("soon", None),
        ("nan", None),
        ("99999999", 86_400.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: retry now
    ],
)
def test_parse_retry_after(header, expected):
    assert parse_retry_after(header) == expected


def test_parse_retry_after_future_date():
    now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("Tue, 01 Jan 2030 12:01:00 GMT", now=now) == 60.0


@pytest.mark.parametrize(
    ("failure", "error_class"),
    [
        (requests.ConnectionError("refused"), RetryableError),
        (requests.exceptions.ConnectTimeout("slow"), RetryableError),
        (requests.exceptions.ReadTimeout("slow"), RetryableError),
        (requests.exceptions.SSLError("handshake"), RetryableError),
        (requests.exceptions.ChunkedEncodingError("cut"), RetryableError),
        (requests.exceptions.InvalidURL("bad"), PermanentError),
        (requests.exceptions.InvalidHeader("bad"), PermanentError),
        (requests.RequestException("other"), RetryableError),
    ],
)
def test_each_requests_exception_becomes_its_typed_error(mock, client, failure, error_class):
    mock.get(f"{BASE}/x", body=failure)
    with pytest.raises(ConnectorError) as caught:
        client.request("GET", "x")
    assert type(caught.value) is error_class
    assert caught.value.__cause__ is failure  # raised ... from the requests exception


def test_timeouts_are_retryable_with_the_reason():
    error = error_for_exception("GET", "v1/x", requests.exceptions.ReadTimeout())
    assert isinstance(error, RetryableError)
    assert str(error).startswith("timed out: GET v1/x")


def test_a_2xx_that_is_not_json_is_retryable(mock, client):
    mock.get(f"{BASE}/x", body="<html>proxy</html>", content_type="text/html")
    with pytest.raises(RetryableError):
        client.request("GET", "x")


def test_401_refreshes_the_token_once_then_succeeds(mock):
    tokens = CountingTokens()
    client = HttpClient(BASE, token_source=tokens)
    mock.get(f"{BASE}/x", status=401)
    mock.get(f"{BASE}/x", json={"ok": 1})
    assert client.request("GET", "x").body == {"ok": 1}
    sent = [call.request.headers["Authorization"] for call in mock.calls]
    assert sent == ["Bearer tok-1", "Bearer tok-2"]
    assert tokens.invalidated == 1


def test_a_second_401_is_an_auth_error(mock):
    tokens = CountingTokens()
    client = HttpClient(BASE, token_source=tokens)
    mock.get(f"{BASE}/x", status=401, json={"code": "invalid_token"})
    with pytest.raises(AuthError) as caught:
        client.request("GET", "x")
    assert caught.value.code == "invalid_token"
    assert len(mock.calls) == 2  # one refresh, not a loop


def test_403_is_not_retried_with_a_new_token(mock):
    tokens = CountingTokens()
    client = HttpClient(BASE, token_source=tokens)
    mock.get(f"{BASE}/x", status=403)
    with pytest.raises(AuthError):
        client.request("GET", "x")
    assert len(mock.calls) == 1


def test_no_token_or_body_is_logged(mock, caplog):
    tokens = CountingTokens()
    client = HttpClient(BASE, token_source=tokens)
    mock.post(f"{BASE}/x", status=422, json={"code": "validation_error", "detail": "nope"})
    mock.get(f"{BASE}/y", body=requests.ConnectionError("refused"))
    caplog.set_level(logging.DEBUG, logger="connectors")
    with pytest.raises(PermanentError) as first:
        client.request("POST", "x", json={"password": "hunter2"})
    with pytest.raises(RetryableError) as second:
        client.request("GET", "y")
    text = caplog.text + str(first.value) + str(second.value)
    assert "tok-1" not in text
    assert "hunter2" not in text
    assert "POST x" in caplog.text or "POST x" in str(first.value)


def test_unreachable_port_is_retryable(unused_port):
    client = HttpClient(f"http://127.0.0.1:{unused_port}", timeout=(1.0, 1.0))
    with pytest.raises(RetryableError) as caught:
        client.request("GET", "x")
    assert isinstance(caught.value.__cause__, requests.ConnectionError)


def test_responses_is_really_in_use(mock, client):
    # Guards the tests above: an unmocked URL must fail, not reach a network.
    with pytest.raises(RetryableError) as caught:
        client.request("GET", "not-mocked")
    assert isinstance(caught.value.__cause__, requests.ConnectionError)
    assert isinstance(mock, responses.RequestsMock)


def test_the_environment_proxies_are_read_once_for_the_host(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "direct.example.org")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/partner-ca.pem")
    proxied = HttpClient("https://partner.example.org/api")
    direct = HttpClient("https://direct.example.org/api")
    assert proxied.session.proxies.get("https") == "http://proxy.internal:3128"
    assert "https" not in direct.session.proxies
    assert proxied.session.verify == "/etc/ssl/partner-ca.pem"
    # Per request, requests would scan the environment again: that is what was turned off.
    assert proxied.session.trust_env is False

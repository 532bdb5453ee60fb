"""Fault injection: each knob makes the connector see the typed error it must handle."""

from __future__ import annotations

import pytest
import requests

from connectors.errors import RetryableError
from connectors.interface import MemberData
from tests.sandbox.conftest import start_sandbox

ADA = MemberData("m-1", "ada@example.org", "Ada")


def test_error_rate_gives_retryable_5xx(sandbox, tr):
    sandbox.faults(error_rate=1.0)
    for _ in range(3):
        with pytest.raises(RetryableError) as caught:
            tr.get_balance(sandbox.clearing_wallet())
        assert caught.value.status in (500, 503)
    sandbox.faults(error_rate=0.0)
    assert tr.get_balance(sandbox.clearing_wallet()).minutes == 0


def test_a_429_burst_carries_retry_after_then_passes(sandbox, tr):
    tr.get_balance(sandbox.clearing_wallet())  # token fetched before the burst
    sandbox.faults(burst_429=2, retry_after_seconds=3)
    for _ in range(2):
        with pytest.raises(RetryableError) as caught:
            tr.get_balance(sandbox.clearing_wallet())
        assert (caught.value.status, caught.value.retry_after) == (429, 3.0)
    assert tr.get_balance(sandbox.clearing_wallet()).minutes == 0
    assert sandbox.control("GET", "faults")["burst_429"] == 0


def test_a_dropped_connection_is_a_retryable_connection_error(sandbox, tr):
    tr.get_balance(sandbox.clearing_wallet())
    sandbox.faults(drop_next=1)
    with pytest.raises(RetryableError) as caught:
        tr.register_member(ADA, "reg-1")
    assert isinstance(caught.value.__cause__, requests.ConnectionError)
    # The write never happened; the same key now goes through.
    assert tr.register_member(ADA, "reg-1").status == "active"


def test_a_drop_rate_of_one_drops_everything(sandbox, tr):
    sandbox.faults(drop_rate=1.0)
    with pytest.raises(RetryableError) as caught:
        tr.get_balance(sandbox.clearing_wallet())
    assert isinstance(caught.value.__cause__, requests.ConnectionError)


def test_latency_beyond_the_read_timeout_is_a_retryable_timeout(sandbox):
    slow = sandbox.connector(read_timeout=0.2)
    slow.get_balance(sandbox.clearing_wallet())
    sandbox.faults(latency_ms=600)
    with pytest.raises(RetryableError) as caught:
        slow.get_balance(sandbox.clearing_wallet())
    assert isinstance(caught.value.__cause__, requests.Timeout)
    assert str(caught.value).startswith("timed out")
    slow.close()


def test_control_endpoints_are_never_faulted(sandbox):
    sandbox.faults(error_rate=1.0, drop_rate=1.0)
    assert sandbox.control("GET", "health")["status"] == "ok"
    assert sandbox.faults(clear=True)["drop_rate"] == 0.0


@pytest.mark.parametrize(
    "settings",
    [{"error_rate": 2}, {"latency_ms": -1}, {"bogus": 1}, {"duplicate_webhooks": "maybe"}],
)
def test_bad_fault_settings_are_refused(sandbox, settings):
    reply = requests.post(f"{sandbox.url}/_sandbox/faults", json=settings, timeout=5)
    assert reply.status_code == 422
    assert reply.json()["code"] == "validation_error"


def test_faults_from_the_environment(tmp_path):
    running = start_sandbox(
        tmp_path / "env", SANDBOX_BURST_429="1", SANDBOX_RETRY_AFTER_SECONDS="7"
    )
    try:
        connector = running.connector()
        with pytest.raises(RetryableError) as caught:
            connector.get_balance(running.clearing_wallet())  # the token request gets the 429
        assert caught.value.retry_after == 7.0
        assert connector.get_balance(running.clearing_wallet()).minutes == 0
        connector.close()
    finally:
        running.server.stop()


def test_a_bad_environment_value_is_one_sentence(tmp_path):
    from gateway.config import ConfigError
    from gateway_sandbox import create_sandbox_app

    with pytest.raises(ConfigError, match="error_rate must be between 0 and 1"):
        create_sandbox_app({"SANDBOX_DATA_DIR": str(tmp_path), "SANDBOX_ERROR_RATE": "5"})


def test_a_lost_response_applies_the_write_and_hangs_up(sandbox, tr):
    tr.get_balance(sandbox.clearing_wallet())
    sandbox.faults(lost_response_rate=1.0)
    with pytest.raises(RetryableError) as caught:
        tr.register_member(ADA, "reg-1")
    assert isinstance(caught.value.__cause__, requests.ConnectionError)
    sandbox.faults(lost_response_rate=0.0)
    # The partner did register Ada: the same key replays its answer.
    assert tr.register_member(ADA, "reg-1").status == "active"
    assert sandbox.control("GET", "faults/injected") == {"lost_response": 1}


def test_a_throttle_rate_answers_429_with_retry_after(sandbox, tr):
    tr.get_balance(sandbox.clearing_wallet())
    sandbox.faults(throttle_rate=1.0, retry_after_seconds=2)
    for _ in range(2):
        with pytest.raises(RetryableError) as caught:
            tr.get_balance(sandbox.clearing_wallet())
        assert (caught.value.status, caught.value.retry_after) == (429, 2.0)
    assert sandbox.control("GET", "faults/injected") == {"throttled_429": 2}


def test_injected_faults_are_counted_by_kind(sandbox, tr):
    tr.get_balance(sandbox.clearing_wallet())
    sandbox.faults(error_rate=1.0)
    for _ in range(3):
        with pytest.raises(RetryableError):
            tr.get_balance(sandbox.clearing_wallet())
    sandbox.faults(clear=True)
    tr.get_balance(sandbox.clearing_wallet())
    counted = sandbox.control("GET", "faults/injected")
    assert set(counted) <= {"error_500", "error_503"}
    assert sum(counted.values()) == 3

"""Standard Webhooks verification against signatures made by the standardwebhooks package."""

from __future__ import annotations

import time

import pytest

from gateway.callbacks.signature import SignatureError, secret_key, sign, verify
from tests.callbacks.conftest import OTHER_SECRET, SECRET, signed, transfer_event


def _lower(headers: dict) -> dict:
    return {k.lower(): v for k, v in headers.items()}


def test_package_signatures_verify():
    body, headers = signed(transfer_event("t1"))
    assert verify(_lower(headers), body, [SECRET]).startswith("evt_")


def test_our_signatures_match_the_package():
    body, headers = signed(transfer_event("t1"))
    ours = sign(SECRET, headers["webhook-id"], int(headers["webhook-timestamp"]), body)
    assert ours == headers["webhook-signature"]


def test_any_active_secret_verifies_during_rotation():
    body, headers = signed(transfer_event("t1"), secret=OTHER_SECRET)
    assert verify(_lower(headers), body, [SECRET, OTHER_SECRET])


def test_several_signatures_in_the_header_are_each_tried():
    body, headers = signed(transfer_event("t1"))
    headers["webhook-signature"] = "v1,AAAA v2,zzz " + headers["webhook-signature"]
    assert verify(_lower(headers), body, [SECRET])


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        (lambda b, h: (b + b" ", h), 401, "no signature matches"),
        (lambda b, h: (b, {**h, "webhook-id": "evt_other"}), 401, "no signature matches"),
        (
            lambda b, h: (b, {k: v for k, v in h.items() if k != "webhook-signature"}),
            400,
            "missing",
        ),
        (lambda b, h: (b, {**h, "webhook-timestamp": "soon"}), 400, "whole number"),
        (lambda b, h: (b, {**h, "webhook-signature": "v1,not-base64!"}), 401, "no signature"),
    ],
)
def test_forgeries_are_refused(change, status, reason):
    body, headers = signed(transfer_event("t1"))
    body, headers = change(body, _lower(headers))
    with pytest.raises(SignatureError, match=reason) as info:
        verify(headers, body, [SECRET])
    assert info.value.status == status
    assert "whsec" not in str(info.value)


@pytest.mark.parametrize("offset", [-301, 301])
def test_old_and_future_timestamps_are_refused(offset):
    body, headers = signed(transfer_event("t1"), timestamp=time.time() + offset)
    with pytest.raises(SignatureError, match="tolerance"):
        verify(_lower(headers), body, [SECRET])


def test_a_removed_secret_no_longer_verifies():
    body, headers = signed(transfer_event("t1"), secret=OTHER_SECRET)
    with pytest.raises(SignatureError):
        verify(_lower(headers), body, [SECRET])


@pytest.mark.parametrize("bad", ["nope", "whsec_", "whsec_c2hvcnQ="])
def test_malformed_secrets_are_refused(bad):
    with pytest.raises(ValueError, match="secret"):
        secret_key(bad)

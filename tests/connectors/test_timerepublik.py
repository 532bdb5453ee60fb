"""The TimeRepublik connector against the partner contract, every operation on mocked HTTP.

The ``tr`` fixture validates every request sent (and every documented answer mocked) against
``timebank-partner-api.yaml`` when the test ends.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime

import pytest
import requests
from responses import matchers

from connectors.errors import AuthError, ConflictError, PermanentError, RetryableError
from connectors.interface import MemberData, TransferData
from connectors.timerepublik import TimeRepublikConnector
from tests.connectors.conftest import (
    PROBLEM,
    TR_BASE,
    TR_SECRET,
    TR_TOKEN,
    TR_TOKEN_URL,
    add_tr_token,
    tr_config,
)
from tests.connectors.contract import ContractCheck, partner_api

MEMBERS = f"{TR_BASE}/v1/members"
TRANSFERS = f"{TR_BASE}/v1/transfers"
CREATED = "2026-03-01T10:00:00Z"

ADA = MemberData(
    external_id="m-ada",
    email="Ada@example.org",
    display_name="Ada",
    locale="it",
    skills=["gardening", "italian"],
)


def member_doc(member_id="tr_m1", external_id="m-ada", email="ada@example.org", **extra):
    return {
        "id": member_id,
        "wallet_id": f"w_{member_id}",
        "status": "active",
        "created_at": CREATED,
        "external_id": external_id,
        "email": email,
        "display_name": "Ada",
        "locale": "it",
        "skills": [],
        **extra,
    }


def transfer_doc(transfer_id="t_1", minutes=90, reference="gw-txn-1", **extra):
    return {
        "id": transfer_id,
        "status": "completed",
        "reversal_of": None,
        "created_at": CREATED,
        "payer_wallet_id": "w_a",
        "payee_wallet_id": "w_b",
        "minutes": minutes,
        "description": "Help with shopping",
        "external_reference": reference,
        **extra,
    }


def problem(status, code, **extra):
    return {"type": "about:blank", "title": "Problem", "status": status, "code": code, **extra}


TRANSFER = TransferData(
    payer_wallet_id="w_a",
    payee_wallet_id="w_b",
    minutes=90,
    description="Help with shopping",
    external_reference="gw-txn-1",
    occurred_at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
)


def sent_json(call) -> dict:
    return json.loads(call.request.body)


# Members


def test_register_member_sends_member_in_with_the_key(tr):
    tr.mock.post(MEMBERS, status=201, json=member_doc())
    remote = tr.connector.register_member(ADA, "outbox-1")
    assert (remote.id, remote.wallet_id, remote.status) == ("tr_m1", "w_tr_m1", "active")
    assert remote.email == "ada@example.org"
    call = tr.calls_to("POST", MEMBERS)[0]
    assert sent_json(call) == {
        "external_id": "m-ada",
        "email": "Ada@example.org",
        "display_name": "Ada",
        "skills": ["gardening", "italian"],
        "locale": "it",
    }
    assert call.request.headers["Idempotency-Key"] == "outbox-1"
    assert call.request.headers["Authorization"] == f"Bearer {TR_TOKEN}"
    assert call.request.headers["Content-Type"] == "application/json"


def test_token_is_fetched_with_client_credentials_and_reused(tr):
    tr.mock.post(MEMBERS, status=201, json=member_doc())
    tr.connector.register_member(ADA, "k1")
    tr.connector.register_member(ADA, "k2")
    token_calls = tr.calls_to("POST", TR_TOKEN_URL)
    assert len(token_calls) == 1
    request = token_calls[0].request
    expected = base64.b64encode(f"gateway:{TR_SECRET}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert "grant_type=client_credentials" in request.body
    assert "scope=members%3Awrite+transfers%3Awrite+transfers%3Aread" in request.body


def test_an_unknown_locale_is_left_to_the_platform_default(tr):
    tr.mock.post(MEMBERS, status=201, json=member_doc())
    tr.connector.register_member(
        MemberData(external_id="m-x", email="x@example.org", display_name="X", locale="fr"), "k"
    )
    assert "locale" not in sent_json(tr.calls_to("POST", MEMBERS)[0])


def test_member_exists_for_our_own_member_is_returned(tr):
    tr.mock.post(MEMBERS, status=409, json=problem(409, "member_exists"), content_type=PROBLEM)
    tr.mock.get(
        MEMBERS,
        json={"data": [member_doc("tr_other", "m-bob", "bob@example.org")], "next_cursor": "c2"},
        match=[matchers.query_param_matcher({"limit": "500"})],
    )
    tr.mock.get(
        MEMBERS,
        json={"data": [member_doc("tr_m7", "m-ada", "ADA@example.org")], "next_cursor": None},
        match=[matchers.query_param_matcher({"limit": "500", "cursor": "c2"})],
    )
    remote = tr.connector.register_member(ADA, "k")
    assert remote.id == "tr_m7"


def test_member_exists_elsewhere_is_a_conflict_to_link(tr):
    tr.mock.post(MEMBERS, status=409, json=problem(409, "member_exists"), content_type=PROBLEM)
    tr.mock.get(MEMBERS, json={"data": [], "next_cursor": None})
    with pytest.raises(ConflictError) as caught:
        tr.connector.register_member(ADA, "k")
    assert caught.value.code == "member_exists"
    assert caught.value.existing_id is None


def test_member_exists_with_another_external_id_names_it(tr):
    tr.mock.post(MEMBERS, status=409, json=problem(409, "member_exists"), content_type=PROBLEM)
    tr.mock.get(
        MEMBERS,
        json={"data": [member_doc("tr_m9", "m-old", "ada@example.org")], "next_cursor": None},
    )
    with pytest.raises(ConflictError) as caught:
        tr.connector.register_member(ADA, "k")
    assert caught.value.existing_id == "tr_m9"


def test_validation_error_is_permanent_with_its_code(tr):
    tr.mock.post(
        MEMBERS,
        status=422,
        json=problem(422, "validation_error", errors={"email": ["not an email"]}),
        content_type=PROBLEM,
    )
    with pytest.raises(PermanentError) as caught:
        tr.connector.register_member(ADA, "k")
    assert caught.value.code == "validation_error"
    assert caught.value.problem["errors"] == {"email": ["not an email"]}


def test_update_member_patches_the_allowed_fields(tr):
    url = f"{MEMBERS}/tr_m1"
    tr.mock.patch(url, json=member_doc(display_name="Ada L."))
    remote = tr.connector.update_member("tr_m1", ADA, "outbox-2")
    assert remote.id == "tr_m1"
    call = tr.calls_to("PATCH", url)[0]
    assert sent_json(call) == {
        "display_name": "Ada",
        "skills": ["gardening", "italian"],
        "locale": "it",
    }
    assert call.request.headers["Idempotency-Key"] == "outbox-2"


def test_remote_ids_are_quoted_into_the_path(tr):
    tr.mock.patch(f"{MEMBERS}/a%2Fb", json=member_doc("a/b"))
    assert tr.connector.update_member("a/b", ADA, "k").id == "a/b"


def test_erase_member_deletes_with_the_key(tr):
    url = f"{MEMBERS}/tr_m1"
    tr.mock.delete(url, status=204)
    tr.connector.erase_member("tr_m1", "outbox-3")
    assert tr.calls_to("DELETE", url)[0].request.headers["Idempotency-Key"] == "outbox-3"


def test_revoke_link_deletes_the_linked_member_with_the_key(tr):
    url = f"{MEMBERS}/tr_m2"
    tr.mock.delete(url, status=204)
    tr.connector.revoke_link("tr_m2", "outbox-4")
    assert tr.calls_to("DELETE", url)[0].request.headers["Idempotency-Key"] == "outbox-4"
    tr.mock.replace("DELETE", url, status=404, json=problem(404, "not_found"), content_type=PROBLEM)
    tr.connector.revoke_link("tr_m2", "outbox-5")  # already unlinked


def test_erasing_a_member_already_gone_is_done(tr):
    url = f"{MEMBERS}/tr_gone"
    tr.mock.delete(url, status=404, json=problem(404, "not_found"), content_type=PROBLEM)
    tr.connector.erase_member("tr_gone", "k")


def test_find_member_walks_pages_and_ignores_case(tr):
    tr.mock.get(
        MEMBERS,
        json={"data": [member_doc("tr_1", "m1", "x@example.org")], "next_cursor": "p2"},
        match=[matchers.query_param_matcher({"limit": "500"})],
    )
    tr.mock.get(
        MEMBERS,
        json={"data": [member_doc("tr_2", "m2", "Ada@Example.org")], "next_cursor": None},
        match=[matchers.query_param_matcher({"limit": "500", "cursor": "p2"})],
    )
    assert tr.connector.find_member("ada@example.ORG").id == "tr_2"


def test_find_member_returns_none_when_absent(tr):
    tr.mock.get(MEMBERS, json={"data": [member_doc()], "next_cursor": None})
    assert tr.connector.find_member("nobody@example.org") is None


def test_find_member_stops_after_its_page_bound(mock):
    add_tr_token(mock)
    connector = TimeRepublikConnector(tr_config(find_member_max_pages=3))
    mock.get(MEMBERS, json={"data": [member_doc()], "next_cursor": "again"})
    assert connector.find_member("nobody@example.org") is None
    assert len([c for c in mock.calls if c.request.url.startswith(MEMBERS)]) == 3
    ContractCheck(partner_api(TR_BASE)).check_calls(mock.calls)


def test_erased_members_do_not_match_by_email(tr):
    erased = member_doc(status="erased", email="erased+tr_m1@sandbox.invalid")
    tr.mock.get(MEMBERS, json={"data": [erased], "next_cursor": None})
    assert tr.connector.find_member("erased+tr_m1@sandbox.invalid") is None


# Wallets and transfers


def test_get_balance_reads_the_wallet(tr):
    tr.mock.get(
        f"{TR_BASE}/v1/wallets/w_a",
        json={
            "id": "w_a",
            "member_id": "tr_m1",
            "balance_minutes": -45,
            "credit_limit_minutes": 600,
            "updated_at": CREATED,
        },
    )
    before = datetime.now(UTC)
    balance = tr.connector.get_balance("w_a")
    assert (balance.wallet_id, balance.minutes) == ("w_a", -45)
    assert before <= balance.as_of <= datetime.now(UTC)


def test_create_transfer_sends_transfer_in_with_the_key(tr):
    tr.mock.post(TRANSFERS, status=201, json=transfer_doc())
    remote = tr.connector.create_transfer(TRANSFER, "outbox-4")
    assert remote.id == "t_1"
    assert remote.minutes == 90
    assert remote.status == "completed"
    assert remote.created_at == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    call = tr.calls_to("POST", TRANSFERS)[0]
    assert sent_json(call) == {
        "payer_wallet_id": "w_a",
        "payee_wallet_id": "w_b",
        "minutes": 90,
        "description": "Help with shopping",
        "external_reference": "gw-txn-1",
        "occurred_at": "2026-03-01T09:30:00Z",
    }
    assert call.request.headers["Idempotency-Key"] == "outbox-4"


@pytest.mark.parametrize("minutes", [0, -5, True])
def test_a_transfer_of_no_minutes_is_refused_before_sending(tr, minutes):
    bad = TransferData("w_a", "w_b", minutes, "x", "gw-txn-2")
    with pytest.raises(PermanentError) as caught:
        tr.connector.create_transfer(bad, "k")
    assert caught.value.code == "validation_error"
    assert tr.calls_to("POST", TRANSFERS) == []


def test_the_same_key_is_sent_again_on_retry(tr):
    tr.mock.post(TRANSFERS, status=503)
    tr.mock.post(TRANSFERS, status=201, json=transfer_doc())
    with pytest.raises(RetryableError):
        tr.connector.create_transfer(TRANSFER, "outbox-5")
    tr.connector.create_transfer(TRANSFER, "outbox-5")
    keys = [c.request.headers["Idempotency-Key"] for c in tr.calls_to("POST", TRANSFERS)]
    bodies = [c.request.body for c in tr.calls_to("POST", TRANSFERS)]
    assert keys == ["outbox-5", "outbox-5"]
    assert bodies[0] == bodies[1]  # same key, same body: the platform replays, never 422s


def test_idempotency_mismatch_is_permanent(tr):
    tr.mock.post(
        TRANSFERS, status=422, json=problem(422, "idempotency_mismatch"), content_type=PROBLEM
    )
    with pytest.raises(PermanentError) as caught:
        tr.connector.create_transfer(TRANSFER, "k")
    assert caught.value.code == "idempotency_mismatch"


def test_rate_limit_is_retryable_after_the_platform_says(tr):
    tr.mock.post(
        TRANSFERS,
        status=429,
        headers={"Retry-After": "12"},
        json=problem(429, "rate_limited"),
        content_type=PROBLEM,
    )
    with pytest.raises(RetryableError) as caught:
        tr.connector.create_transfer(TRANSFER, "k")
    assert caught.value.retry_after == 12.0


def test_duplicate_reference_of_our_own_transfer_is_that_transfer(tr):
    tr.mock.post(
        TRANSFERS,
        status=409,
        json=problem(409, "duplicate_reference", existing_id="t_1"),
        content_type=PROBLEM,
    )
    tr.mock.get(
        TRANSFERS,
        json={"data": [transfer_doc()], "next_cursor": None},
        match=[matchers.query_param_matcher({"limit": "1", "external_reference": "gw-txn-1"})],
    )
    assert tr.connector.create_transfer(TRANSFER, "k").id == "t_1"


def test_duplicate_reference_of_another_transfer_is_a_conflict(tr):
    tr.mock.post(
        TRANSFERS,
        status=409,
        json=problem(409, "duplicate_reference", existing_id="t_8"),
        content_type=PROBLEM,
    )
    tr.mock.get(TRANSFERS, json={"data": [transfer_doc("t_8", minutes=30)], "next_cursor": None})
    with pytest.raises(ConflictError) as caught:
        tr.connector.create_transfer(TRANSFER, "k")
    assert caught.value.existing_id == "t_8"
    assert caught.value.code == "duplicate_reference"


def test_insufficient_balance_is_permanent(tr):
    tr.mock.post(
        TRANSFERS, status=422, json=problem(422, "insufficient_balance"), content_type=PROBLEM
    )
    with pytest.raises(PermanentError) as caught:
        tr.connector.create_transfer(TRANSFER, "k")
    assert caught.value.code == "insufficient_balance"


def test_reverse_transfer_posts_the_reversal_with_the_key(tr):
    url = f"{TRANSFERS}/t_1/reversal"
    reversal = transfer_doc(
        "t_2",
        reference="reversal-of-t_1",
        reversal_of="t_1",
        payer_wallet_id="w_b",
        payee_wallet_id="w_a",
    )
    tr.mock.post(url, status=201, json=reversal)
    remote = tr.connector.reverse_transfer("t_1", "outbox-6")
    assert (remote.id, remote.reversal_of, remote.payer_wallet_id) == ("t_2", "t_1", "w_b")
    call = tr.calls_to("POST", url)[0]
    assert call.request.headers["Idempotency-Key"] == "outbox-6"
    assert call.request.body is None


def test_reversing_twice_names_the_reversal(tr):
    url = f"{TRANSFERS}/t_1/reversal"
    tr.mock.post(
        url,
        status=409,
        json=problem(409, "already_reversed", existing_id="t_2"),
        content_type=PROBLEM,
    )
    with pytest.raises(ConflictError) as caught:
        tr.connector.reverse_transfer("t_1", "k")
    assert caught.value.existing_id == "t_2"


def test_list_transfers_pages_with_the_cursor(tr):
    tr.mock.get(
        TRANSFERS,
        json={
            "data": [transfer_doc("t_1"), transfer_doc("t_2", reference="r2")],
            "next_cursor": "c9",
        },
        match=[matchers.query_param_matcher({"limit": "2"})],
    )
    tr.mock.get(
        TRANSFERS,
        json={"data": [transfer_doc("t_3", reference="native-3")], "next_cursor": None},
        match=[matchers.query_param_matcher({"limit": "2", "cursor": "c9"})],
    )
    first = tr.connector.list_transfers(None, 2)
    assert [t.id for t in first.items] == ["t_1", "t_2"]
    assert first.next_cursor == "c9"
    second = tr.connector.list_transfers(first.next_cursor, 2)
    assert [t.id for t in second.items] == ["t_3"]
    assert second.items[0].external_reference == "native-3"
    assert second.next_cursor is None


def test_list_transfers_dedupes_and_clamps_the_limit(tr):
    tr.mock.get(
        TRANSFERS,
        json={"data": [transfer_doc("t_1"), transfer_doc("t_1")], "next_cursor": None},
        match=[matchers.query_param_matcher({"limit": "500"})],
    )
    page = tr.connector.list_transfers(None, 10_000)
    assert [t.id for t in page.items] == ["t_1"]


def test_a_drifting_answer_is_a_permanent_error(mock):
    add_tr_token(mock)
    connector = TimeRepublikConnector(tr_config())
    mock.get(TRANSFERS, json={"data": [{"id": "t_1", "status": "pending"}], "next_cursor": None})
    with pytest.raises(PermanentError) as caught:
        connector.list_transfers(None, 10)
    assert caught.value.code == "bad_response"


# Callbacks


def event(kind, data, event_id="evt_1"):
    return json.dumps({"id": event_id, "type": kind, "created_at": CREATED, "data": data}).encode()


@pytest.mark.parametrize("kind", ["transfer.completed", "transfer.reversed"])
def test_transfer_events_are_parsed(tr, kind):
    parsed = tr.connector.parse_callback({"webhook-id": "evt_1"}, event(kind, transfer_doc()))
    assert parsed.event_id == "evt_1"
    assert parsed.type == kind
    assert parsed.transfer.id == "t_1"
    assert parsed.member is None
    assert parsed.occurred_at == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "status"), [("member.updated", "active"), ("member.erased", "erased")]
)
def test_member_events_are_parsed(tr, kind, status):
    data = member_doc(status=status)
    parsed = tr.connector.parse_callback({"Webhook-Id": "evt_1"}, event(kind, data))
    assert parsed.member.id == "tr_m1"
    assert parsed.member.status == status
    assert parsed.transfer is None


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({}, b"not json"),
        ({}, b"\xff\xfe"),
        ({}, b"[]"),
        ({}, event("transfer.completed", {"id": "t_1"})),
        ({}, event("transfer.completed", transfer_doc(minutes=0))),
        ({}, event("transfer.completed", transfer_doc(minutes=14401))),
        ({"webhook-id": "evt_other"}, event("transfer.completed", transfer_doc())),
        ({}, json.dumps({"id": "e", "type": "member.updated", "data": {}}).encode()),
    ],
)
def test_malformed_events_are_permanent_errors(tr, headers, body):
    with pytest.raises(PermanentError) as caught:
        tr.connector.parse_callback(headers, body)
    assert caught.value.code == "malformed_event"


def test_an_unknown_event_type_parses_without_data(tr):
    # The contract may add types: they are acknowledged and ignored, not refused.
    parsed = tr.connector.parse_callback({}, event("transfer.exploded", {"x": 1}))
    assert (parsed.type, parsed.transfer, parsed.member) == ("transfer.exploded", None, None)


def test_events_decode_without_credentials():
    from connectors.interface import PlatformConfig
    from connectors.timerepublik import TimeRepublikConnector

    config = PlatformConfig(name="bare", base_url=TR_BASE)
    parsed = TimeRepublikConnector.decode_callback(
        config, {"webhook-id": "evt_1"}, event("transfer.completed", transfer_doc())
    )
    assert parsed.transfer.minutes == 90


# Linking and webhooks


def test_oauth_settings_name_the_platform_endpoints(tr):
    settings = tr.connector.oauth_settings()
    assert settings.authorize_url == f"{TR_BASE}/oauth/authorize"
    assert settings.token_url == TR_TOKEN_URL
    assert settings.scopes == ("profile",)
    assert settings.client_id == "gateway"


def test_link_member_exchanges_the_code_and_reads_me(tr):
    tr.mock.replace(
        "POST",
        TR_TOKEN_URL,
        json={"access_token": "member-tok", "token_type": "Bearer", "expires_in": 600},
    )
    tr.mock.get(f"{TR_BASE}/v1/me", json=member_doc("tr_native", external_id=""))
    remote = tr.connector.link_member("c0de", "http://127.0.0.1:5000/link/cb", "v" * 43)
    assert remote.id == "tr_native"
    exchange = tr.calls_to("POST", TR_TOKEN_URL)[0].request
    assert matchers.urlencoded_params_matcher(
        {
            "grant_type": "authorization_code",
            "code": "c0de",
            "redirect_uri": "http://127.0.0.1:5000/link/cb",
            "code_verifier": "v" * 43,
        }
    )(exchange)[0]
    assert exchange.headers["Authorization"].startswith("Basic ")
    me = tr.calls_to("GET", f"{TR_BASE}/v1/me")[0]
    assert me.request.headers["Authorization"] == "Bearer member-tok"


def test_a_bad_code_is_a_permanent_error(tr):
    tr.mock.replace(
        "POST", TR_TOKEN_URL, status=400, json=problem(400, "invalid_grant"), content_type=PROBLEM
    )
    with pytest.raises(PermanentError) as caught:
        tr.connector.link_member("bad", "http://127.0.0.1:5000/cb", "v" * 43)
    assert caught.value.code == "invalid_grant"
    assert not isinstance(caught.value, AuthError)


def test_register_webhook_endpoint_returns_the_secret(tr):
    url = f"{TR_BASE}/v1/webhook-endpoints"
    tr.mock.put(url, json={"url": "http://127.0.0.1:5000/cb", "secret": "whsec_abc", "events": []})
    endpoint = tr.connector.register_webhook_endpoint("http://127.0.0.1:5000/cb")
    assert endpoint.secret == "whsec_abc"
    assert "whsec_abc" not in repr(endpoint)
    assert sent_json(tr.calls_to("PUT", url)[0]) == {"url": "http://127.0.0.1:5000/cb"}


# Tokens and secrets


def test_a_refused_token_is_refreshed_once(tr):
    tr.mock.replace(
        "POST",
        TR_TOKEN_URL,
        json={"access_token": "tok-a", "token_type": "Bearer", "expires_in": 3600},
    )
    tr.mock.get(
        f"{TR_BASE}/v1/wallets/w_a",
        status=401,
        json=problem(401, "invalid_token"),
        content_type=PROBLEM,
    )
    tr.mock.get(
        f"{TR_BASE}/v1/wallets/w_a",
        json={"id": "w_a", "member_id": "m", "balance_minutes": 5, "updated_at": CREATED},
    )
    assert tr.connector.get_balance("w_a").minutes == 5
    assert len(tr.calls_to("POST", TR_TOKEN_URL)) == 2


def test_credentials_refused_after_refresh_is_an_auth_error(tr):
    tr.mock.get(
        f"{TR_BASE}/v1/wallets/w_a",
        status=401,
        json=problem(401, "invalid_token"),
        content_type=PROBLEM,
    )
    with pytest.raises(AuthError):
        tr.connector.get_balance("w_a")
    assert len(tr.calls_to("GET", f"{TR_BASE}/v1/wallets/w_a")) == 2


def test_secrets_stay_out_of_logs_errors_and_reprs(tr, caplog):
    caplog.set_level(logging.DEBUG)
    tr.mock.post(MEMBERS, body=requests.ConnectionError("refused"))
    with pytest.raises(RetryableError) as caught:
        tr.connector.register_member(ADA, "k")
    everything = caplog.text + str(caught.value) + repr(tr.connector.config)
    assert TR_SECRET not in everything
    assert TR_TOKEN not in everything

"""The Komunitin connector against the published accounting contract, on mocked HTTP.

The ``komunitin`` fixture's currency is an hour currency with scale 2 (amount 100 = 1 hour = 60
minutes), and every exchange is validated against ``komunitin-accounting-openapi.json``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from responses import matchers

from connectors.errors import AuthError, PermanentError, RetryableError
from connectors.interface import MemberData, TransferData
from connectors.komunitin import KomunitinConnector
from connectors.komunitin.connector import KOMUNITIN_NAMESPACE, client_id_for
from connectors.komunitin.schemas import meta_with_tag, parse_tag
from connectors.komunitin.units import CurrencyUnits, InexactAmount
from connectors.testing.conformance import MemoryTokenStore
from tests.connectors.conftest import (
    JSON_API,
    KOMUNITIN_BASE,
    KOMUNITIN_JWT,
    HandedTokens,
    currency_doc,
    komunitin_config,
)
from tests.connectors.contract import ContractCheck, komunitin_api

ACCOUNTS = f"{KOMUNITIN_BASE}/TEST/accounts"
TRANSFERS = f"{KOMUNITIN_BASE}/TEST/transfers"
CURRENCY = f"{KOMUNITIN_BASE}/TEST/currency"
CREATED = "2024-10-17T10:31:01.143Z"

ADA = MemberData(external_id="m-ada", email="ada@example.org", display_name="Ada")
TRANSFER = TransferData(
    payer_wallet_id="acc-a",
    payee_wallet_id="acc-b",
    minutes=90,
    description="Help with shopping",
    external_reference="gw-txn-1",
)


def account_doc(account_id="acc-1", balance=0, status="active", users=("m-ada",)):
    return {
        "data": {
            "type": "accounts",
            "id": account_id,
            "attributes": {
                "code": "TEST0001",
                "status": status,
                "balance": balance,
                "creditLimit": 1000,
                "created": CREATED,
                "updated": CREATED,
            },
            "relationships": {
                "currency": {"data": {"type": "currencies", "id": "cur-1"}},
                "users": {"data": [{"type": "users", "id": u} for u in users]},
            },
        }
    }


def transfer_resource(
    transfer_id="tr-1",
    state="committed",
    amount=150,
    meta="Help [gw:gw-txn-1]",
    payer="acc-a",
    payee="acc-b",
):
    return {
        "type": "transfers",
        "id": transfer_id,
        "attributes": {
            "state": state,
            "amount": amount,
            "meta": meta,
            "created": CREATED,
            "updated": CREATED,
        },
        "links": {"self": f"{TRANSFERS}/{transfer_id}"},
        "relationships": {
            "payer": {"data": {"type": "accounts", "id": payer}},
            "payee": {"data": {"type": "accounts", "id": payee}},
            "currency": {"data": {"type": "currencies", "id": "cur-1"}},
        },
    }


def errors(status, code, detail):
    return {"errors": [{"status": str(status), "code": code, "title": code, "detail": detail}]}


def sent_json(call) -> dict:
    return json.loads(call.request.body)


# Units


@pytest.mark.parametrize(
    ("scale", "n", "d", "amount", "minutes"),
    [
        (2, 1, 1, 100, 60),  # an hour currency: 1.00 h
        (2, 1, 1, 150, 90),
        (2, 1, 1, 5, 3),  # 0.05 h, the smallest exact step of an hour currency
        (4, 1, 1, 10000, 60),
        (0, 1, 1, 2, 120),
        (4, 1, 10, 10000, 6),  # the contract's example currency: 1 unit = 1/10 h
        (2, 1, 10, 1000, 60),
        (0, 1, 60, 1, 1),  # a "minute" currency
        (2, 2, 1, 50, 60),  # 1 unit = 2 h
    ],
)
def test_amounts_convert_exactly_both_ways(scale, n, d, amount, minutes):
    units = CurrencyUnits("TEST", scale, n, d)
    assert units.to_minutes(amount) == minutes
    assert units.to_amount(minutes) == amount


@pytest.mark.parametrize(("scale", "minutes"), [(2, 1), (2, 20), (4, 1), (4, 40), (12, 1)])
def test_minutes_that_are_no_whole_amount_are_refused(scale, minutes):
    with pytest.raises(InexactAmount) as caught:
        CurrencyUnits("TEST", scale).to_amount(minutes)
    assert caught.value.code == "inexact_amount"
    assert isinstance(caught.value, PermanentError)


@pytest.mark.parametrize(("scale", "amount"), [(2, 1), (2, 33), (4, 1)])
def test_amounts_that_are_no_whole_minutes_are_refused(scale, amount):
    with pytest.raises(InexactAmount):
        CurrencyUnits("TEST", scale).to_minutes(amount)


@given(
    scale=st.integers(0, 12),
    n=st.integers(1, 20),
    d=st.integers(1, 20),
    amount=st.integers(-(10**15), 10**15),
)
def test_conversion_round_trips_whenever_it_is_exact(scale, n, d, amount):
    units = CurrencyUnits("TEST", scale, n, d)
    try:
        minutes = units.to_minutes(amount)
    except InexactAmount:
        return
    assert units.to_amount(minutes) == amount


@pytest.mark.parametrize(("scale", "n", "d"), [(-1, 1, 1), (13, 1, 1), (2, 0, 1), (2, 1, 0)])
def test_nonsense_currencies_are_refused(scale, n, d):
    with pytest.raises(PermanentError):
        CurrencyUnits("TEST", scale, n, d)


def test_meta_tag_round_trips():
    meta = meta_with_tag("Reversal of Help", "reversal-of-tr-1", reversal_of="tr-1")
    assert meta == "Reversal of Help [gw:reversal-of-tr-1;reversal_of=tr-1]"
    assert parse_tag(meta) == ("Reversal of Help", "reversal-of-tr-1", "tr-1")
    assert parse_tag("Native payment") == ("Native payment", None, None)


# Accounts (members)


def test_register_member_creates_an_account_with_a_key_derived_id(komunitin):
    account_id = client_id_for("outbox-1")
    assert account_id == str(uuid.uuid5(KOMUNITIN_NAMESPACE, "outbox-1"))
    komunitin.add("POST", ACCOUNTS, status=201, json=account_doc(account_id))
    remote = komunitin.connector.register_member(ADA, "outbox-1")
    assert (remote.id, remote.wallet_id, remote.status, remote.email) == (
        account_id,
        account_id,
        "active",
        None,
    )
    call = komunitin.calls_to("POST", ACCOUNTS)[0]
    user = {"type": "users", "id": "m-ada"}
    assert sent_json(call) == {
        "data": {
            "type": "accounts",
            "id": account_id,
            "relationships": {"users": {"data": [user]}},
        },
        "included": [user],
    }
    headers = call.request.headers
    assert headers["Authorization"] == f"Bearer {KOMUNITIN_JWT}"
    assert headers["Accept"] == JSON_API
    assert headers["Content-Type"] == "application/json"  # the type the contract declares


def test_a_repeated_account_create_reads_the_account_back(komunitin):
    account_id = client_id_for("outbox-1")
    komunitin.add("POST", ACCOUNTS, status=500, json=errors(500, "InternalError", "unique"))
    komunitin.add("GET", f"{ACCOUNTS}/{account_id}", json=account_doc(account_id))
    assert komunitin.connector.register_member(ADA, "outbox-1").id == account_id


def test_a_failed_account_create_without_account_raises_the_failure(komunitin):
    account_id = client_id_for("outbox-1")
    komunitin.add("POST", ACCOUNTS, status=400, json=errors(400, "BadRequest", "bad user"))
    komunitin.add("GET", f"{ACCOUNTS}/{account_id}", status=404, json=errors(404, "NotFound", "no"))
    with pytest.raises(PermanentError) as caught:
        komunitin.connector.register_member(ADA, "outbox-1")
    assert caught.value.code == "BadRequest"


def test_an_account_of_another_user_under_our_id_is_refused(komunitin):
    account_id = client_id_for("outbox-1")
    komunitin.add("POST", ACCOUNTS, status=400, json=errors(400, "BadRequest", "exists"))
    komunitin.add("GET", f"{ACCOUNTS}/{account_id}", json=account_doc(account_id, users=("m-bob",)))
    with pytest.raises(PermanentError) as caught:
        komunitin.connector.register_member(ADA, "outbox-1")
    assert caught.value.code == "idempotency_mismatch"


def test_update_member_only_reads_the_account(komunitin):
    komunitin.add("GET", f"{ACCOUNTS}/acc-1", json=account_doc())
    assert komunitin.connector.update_member("acc-1", ADA, "k").id == "acc-1"
    assert [c.request.method for c in komunitin.mock.calls] == ["GET"]


def test_erase_and_find_touch_nothing(komunitin):
    komunitin.connector.erase_member("acc-1", "k")
    assert komunitin.connector.find_member("ada@example.org") is None
    assert komunitin.connector.oauth_settings() is None
    assert len(komunitin.mock.calls) == 0


@pytest.mark.parametrize(
    ("status", "expected"), [("disabled", "suspended"), ("deleted", "erased"), ("odd", "suspended")]
)
def test_account_statuses_map_to_member_statuses(komunitin, status, expected):
    komunitin.add("GET", f"{ACCOUNTS}/acc-1", json=account_doc(status=status))
    assert komunitin.connector.update_member("acc-1", ADA, "k").status == expected


def test_get_balance_converts_and_reads_the_currency_once(komunitin):
    komunitin.add("GET", f"{ACCOUNTS}/acc-1", json=account_doc(balance=-250))
    assert komunitin.connector.get_balance("acc-1").minutes == -150
    assert komunitin.connector.get_balance("acc-1").minutes == -150
    assert len(komunitin.calls_to("GET", CURRENCY)) == 1


def test_a_balance_of_no_whole_minutes_is_refused(komunitin):
    komunitin.add("GET", f"{ACCOUNTS}/acc-1", json=account_doc(balance=1))
    with pytest.raises(PermanentError) as caught:
        komunitin.connector.get_balance("acc-1")
    assert caught.value.code == "inexact_amount"


def test_a_hidden_balance_is_refused(komunitin):
    doc = account_doc()
    del doc["data"]["attributes"]["balance"]
    komunitin.add("GET", f"{ACCOUNTS}/acc-1", json=doc)
    with pytest.raises(PermanentError):
        komunitin.connector.get_balance("acc-1")


def test_the_currency_is_read_again_after_its_ttl(mock):
    mock.get(CURRENCY, json=currency_doc())
    mock.get(f"{ACCOUNTS}/acc-1", json=account_doc(balance=100))
    connector = KomunitinConnector(komunitin_config(currency_ttl=0))
    connector.get_balance("acc-1")
    connector.get_balance("acc-1")
    assert len([c for c in mock.calls if c.request.url == CURRENCY]) == 2


# Transfers


def test_create_transfer_posts_a_committed_transfer(komunitin):
    transfer_id = client_id_for("outbox-4")
    komunitin.add(
        "POST",
        TRANSFERS,
        status=201,
        json={"data": transfer_resource(transfer_id, meta="Help with shopping [gw:gw-txn-1]")},
    )
    remote = komunitin.connector.create_transfer(TRANSFER, "outbox-4")
    assert remote.id == transfer_id
    assert remote.minutes == 90
    assert remote.status == "completed"
    assert remote.external_reference == "gw-txn-1"
    assert remote.description == "Help with shopping"
    assert remote.created_at == datetime(2024, 10, 17, 10, 31, 1, 143000, tzinfo=UTC)
    assert sent_json(komunitin.calls_to("POST", TRANSFERS)[0]) == {
        "data": {
            "type": "transfers",
            "id": transfer_id,
            "attributes": {
                "amount": 150,
                "meta": "Help with shopping [gw:gw-txn-1]",
                "state": "committed",
            },
            "relationships": {
                "payer": {"data": {"type": "accounts", "id": "acc-a"}},
                "payee": {"data": {"type": "accounts", "id": "acc-b"}},
            },
        }
    }


def test_the_same_key_gives_the_same_transfer_id(komunitin):
    komunitin.add("POST", TRANSFERS, status=503)
    komunitin.add(
        "POST", TRANSFERS, status=201, json={"data": transfer_resource(client_id_for("k"))}
    )
    with pytest.raises(RetryableError):
        komunitin.connector.create_transfer(TRANSFER, "k")
    komunitin.connector.create_transfer(TRANSFER, "k")
    ids = [sent_json(c)["data"]["id"] for c in komunitin.calls_to("POST", TRANSFERS)]
    assert ids == [client_id_for("k")] * 2


def test_already_exists_reads_the_transfer_back(komunitin):
    transfer_id = client_id_for("outbox-4")
    komunitin.add(
        "POST",
        TRANSFERS,
        status=400,
        json=errors(400, "BadRequest", f"Transfer {transfer_id} already exists"),
    )
    komunitin.add(
        "GET",
        f"{TRANSFERS}/{transfer_id}",
        json={"data": transfer_resource(transfer_id)},
    )
    remote = komunitin.connector.create_transfer(TRANSFER, "outbox-4")
    assert remote.id == transfer_id
    assert remote.minutes == 90


def test_already_exists_with_other_contents_is_refused(komunitin):
    transfer_id = client_id_for("k")
    komunitin.add("POST", TRANSFERS, status=400, json=errors(400, "BadRequest", "already exists"))
    komunitin.add(
        "GET", f"{TRANSFERS}/{transfer_id}", json={"data": transfer_resource(transfer_id, amount=5)}
    )
    with pytest.raises(PermanentError) as caught:
        komunitin.connector.create_transfer(TRANSFER, "k")
    assert caught.value.code == "idempotency_mismatch"


def test_other_bad_requests_stay_permanent(komunitin):
    komunitin.add(
        "POST", TRANSFERS, status=400, json=errors(400, "InsufficientBalance", "Not enough funds")
    )
    with pytest.raises(PermanentError) as caught:
        komunitin.connector.create_transfer(TRANSFER, "k")
    assert caught.value.code == "InsufficientBalance"
    assert komunitin.calls_to("GET", f"{TRANSFERS}/{client_id_for('k')}") == []


@pytest.mark.parametrize("state", ["submitted", "pending", "accepted"])
def test_an_in_flight_transfer_is_retried(komunitin, state):
    komunitin.add("POST", TRANSFERS, status=201, json={"data": transfer_resource(state=state)})
    with pytest.raises(RetryableError) as caught:
        komunitin.connector.create_transfer(TRANSFER, "k")
    assert caught.value.retry_after == 5.0


@pytest.mark.parametrize("state", ["failed", "rejected", "deleted"])
def test_a_failed_transfer_is_permanent(komunitin, state):
    komunitin.add("POST", TRANSFERS, status=201, json={"data": transfer_resource(state=state)})
    with pytest.raises(PermanentError) as caught:
        komunitin.connector.create_transfer(TRANSFER, "k")
    assert caught.value.code == f"transfer_{state}"


def test_a_draft_is_committed(komunitin):
    transfer_id = client_id_for("k")
    komunitin.add(
        "POST", TRANSFERS, status=201, json={"data": transfer_resource(transfer_id, state="new")}
    )
    komunitin.add(
        "PATCH",
        f"{TRANSFERS}/{transfer_id}",
        json={"data": transfer_resource(transfer_id)},
        match=[
            matchers.json_params_matcher(
                {
                    "data": {
                        "type": "transfers",
                        "id": transfer_id,
                        "attributes": {"state": "committed"},
                    }
                }
            )
        ],
    )
    assert komunitin.connector.create_transfer(TRANSFER, "k").status == "completed"


def test_minutes_that_do_not_convert_are_refused_before_sending(komunitin):
    odd = TransferData("acc-a", "acc-b", 20, "x", "gw-txn-2")
    with pytest.raises(PermanentError) as caught:
        komunitin.connector.create_transfer(odd, "k")
    assert caught.value.code == "inexact_amount"
    assert komunitin.calls_to("POST", TRANSFERS) == []


def test_reverse_transfer_makes_the_opposite_transfer(komunitin):
    reversal_id = client_id_for("outbox-6")
    komunitin.add(
        "GET",
        f"{TRANSFERS}/tr-1",
        json={"data": transfer_resource("tr-1", meta="Help [gw:gw-txn-1]")},
    )
    reversal_meta = "Reversal of Help [gw:reversal-of-tr-1;reversal_of=tr-1]"
    komunitin.add(
        "POST",
        TRANSFERS,
        status=201,
        json={
            "data": transfer_resource(reversal_id, meta=reversal_meta, payer="acc-b", payee="acc-a")
        },
    )
    remote = komunitin.connector.reverse_transfer("tr-1", "outbox-6")
    assert (remote.id, remote.reversal_of, remote.payer_wallet_id) == (reversal_id, "tr-1", "acc-b")
    sent = sent_json(komunitin.calls_to("POST", TRANSFERS)[0])["data"]
    assert sent["attributes"] == {"amount": 150, "meta": reversal_meta, "state": "committed"}
    assert sent["relationships"]["payer"]["data"]["id"] == "acc-b"


@pytest.mark.parametrize(
    ("resource", "reason"),
    [
        (transfer_resource("tr-1", state="pending"), "not committed"),
        (transfer_resource("tr-1", meta="x [gw:r;reversal_of=tr-0]"), "itself a reversal"),
    ],
)
def test_only_committed_originals_are_reversed(komunitin, resource, reason):
    komunitin.add("GET", f"{TRANSFERS}/tr-1", json={"data": resource})
    with pytest.raises(PermanentError, match=reason):
        komunitin.connector.reverse_transfer("tr-1", "k")


def test_list_transfers_pages_by_offset_and_keeps_committed_once(komunitin):
    komunitin.add(
        "GET",
        TRANSFERS,
        json={
            "links": {"next": f"{TRANSFERS}?page%5Bafter%5D=4"},
            "data": [
                transfer_resource("tr-1"),
                transfer_resource("tr-2", state="failed"),
                transfer_resource("tr-1"),  # repeated by a shifting offset
                transfer_resource("tr-3", meta="Native payment"),
            ],
        },
        match=[
            matchers.query_param_matcher({"page[after]": "0", "page[size]": "4", "sort": "created"})
        ],
    )
    komunitin.add(
        "GET",
        TRANSFERS,
        json={
            "links": {"first": f"{TRANSFERS}?page%5Bafter%5D=0"},
            "data": [transfer_resource("tr-4")],
        },
        match=[
            matchers.query_param_matcher({"page[after]": "4", "page[size]": "4", "sort": "created"})
        ],
    )
    first = komunitin.connector.list_transfers(None, 4)
    assert [t.id for t in first.items] == ["tr-1", "tr-3"]
    assert first.items[1].external_reference is None
    assert first.next_cursor == "4"
    second = komunitin.connector.list_transfers(first.next_cursor, 4)
    assert [t.id for t in second.items] == ["tr-4"]
    assert second.next_cursor is None


def test_pages_of_only_drafts_are_read_past(komunitin):
    nothing = {"links": {"next": "more"}, "data": [transfer_resource("tr-0", state="failed")]}
    komunitin.add(
        "GET",
        TRANSFERS,
        json=nothing,
        match=[
            matchers.query_param_matcher({"page[after]": "0", "page[size]": "1", "sort": "created"})
        ],
    )
    komunitin.add(
        "GET",
        TRANSFERS,
        json={"links": {"next": "more"}, "data": [transfer_resource("tr-1")]},
        match=[
            matchers.query_param_matcher({"page[after]": "1", "page[size]": "1", "sort": "created"})
        ],
    )
    page = komunitin.connector.list_transfers(None, 1)
    assert ([t.id for t in page.items], page.next_cursor) == (["tr-1"], "2")


def test_reading_past_drafts_is_bounded(komunitin):
    nothing = {"links": {"next": "more"}, "data": [transfer_resource("tr-0", state="failed")]}
    komunitin.add("GET", TRANSFERS, json=nothing)
    page = komunitin.connector.list_transfers(None, 1)
    assert (page.items, page.next_cursor) == ((), "5")
    assert len(komunitin.calls_to("GET", TRANSFERS)) == 5


def test_list_without_links_decides_by_page_size(komunitin):
    komunitin.add("GET", TRANSFERS, json={"data": [transfer_resource("tr-1")]})
    assert komunitin.connector.list_transfers("7", 1).next_cursor == "8"


@pytest.mark.parametrize("cursor", ["abc", "-1"])
def test_a_foreign_cursor_is_refused(komunitin, cursor):
    with pytest.raises(PermanentError):
        komunitin.connector.list_transfers(cursor, 10)


# Events


def komunitin_event(name, transfer_id="tr-1", code="TEST"):
    return json.dumps(
        {
            "data": {
                "type": "events",
                "attributes": {
                    "name": name,
                    "source": KOMUNITIN_BASE,
                    "time": CREATED,
                    "code": code,
                    "data": {"transfer": transfer_id, "payer": "acc-a", "payee": "acc-b"},
                },
            }
        }
    ).encode()


def test_a_committed_event_reads_its_transfer(komunitin):
    komunitin.add("GET", f"{TRANSFERS}/tr-1", json={"data": transfer_resource("tr-1")})
    parsed = komunitin.connector.parse_callback({}, komunitin_event("TransferCommitted"))
    assert parsed.event_id == "tr-1:committed"
    assert parsed.type == "transfer.completed"
    assert parsed.transfer.minutes == 90
    assert parsed.occurred_at.tzinfo is not None


@pytest.mark.parametrize(
    ("name", "event_id", "kind"),
    [
        ("TransferPending", "tr-1:pending", "transfer.pending"),
        ("TransferRejected", "tr-1:rejected", "transfer.rejected"),
    ],
)
def test_other_events_carry_their_dedupe_key(komunitin, name, event_id, kind):
    parsed = komunitin.connector.parse_callback({}, komunitin_event(name))
    assert (parsed.event_id, parsed.type, parsed.transfer) == (event_id, kind, None)
    assert len(komunitin.mock.calls) == 0


def test_an_event_that_is_not_about_a_transfer_is_decoded_for_the_core_to_ignore(komunitin):
    parsed = komunitin.connector.parse_callback({}, komunitin_event("AccountCreated"))
    assert parsed.type == "komunitin.AccountCreated"
    assert parsed.event_id == f"AccountCreated:{parsed.occurred_at.isoformat()}"
    assert (parsed.transfer, parsed.member) == (None, None)
    assert len(komunitin.mock.calls) == 0


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b'{"data": []}',
        komunitin_event("TransferCommitted", code="OTHR"),
        json.dumps(
            {"data": {"attributes": {"name": "TransferCommitted", "code": "TEST"}}}
        ).encode(),
    ],
)
def test_malformed_events_are_permanent(komunitin, body):
    with pytest.raises(PermanentError) as caught:
        komunitin.connector.parse_callback({}, body)
    assert caught.value.code == "malformed_event"


# Configuration and tokens


def test_client_credentials_when_no_token_source_is_handed_in(mock):
    token_url = "https://auth.komunitin.test/oauth2/token"
    mock.post(token_url, json={"access_token": "cc-jwt", "token_type": "Bearer", "expires_in": 600})
    mock.get(CURRENCY, json=currency_doc(), content_type=JSON_API)
    mock.get(f"{ACCOUNTS}/acc-1", json=account_doc(balance=100), content_type=JSON_API)
    config = komunitin_config(
        tokens=False, credentials={"client_id": "gw", "client_secret": "sec"}, token_url=token_url
    )
    assert KomunitinConnector(config).get_balance("acc-1").minutes == 60
    token_request = mock.calls[0].request
    assert "scope=komunitin_accounting" in token_request.body
    assert mock.calls[1].request.headers["Authorization"] == "Bearer cc-jwt"
    ContractCheck(komunitin_api(KOMUNITIN_BASE)).check_calls(mock.calls[1:])


def test_client_credentials_are_shared_through_the_token_store(mock):
    token_url = "https://auth.komunitin.test/oauth2/token"
    mock.post(token_url, json={"access_token": "cc-jwt", "token_type": "Bearer", "expires_in": 600})
    mock.get(CURRENCY, json=currency_doc(), content_type=JSON_API)
    mock.get(f"{ACCOUNTS}/acc-1", json=account_doc(balance=100), content_type=JSON_API)
    store = MemoryTokenStore()
    config = komunitin_config(
        tokens=False, credentials={"client_id": "gw", "client_secret": "sec"}, token_url=token_url
    )
    for _ in range(2):  # two processes, one store
        KomunitinConnector(replace(config, token_store=store)).get_balance("acc-1")
    assert len([c for c in mock.calls if c.request.url == token_url]) == 1
    assert (store.puts, store.hits) == (1, 1)


def test_a_handed_in_token_source_wins_over_client_credentials(mock):
    mock.get(CURRENCY, json=currency_doc())
    mock.get(f"{ACCOUNTS}/acc-1", json=account_doc(balance=100))
    connector = KomunitinConnector(
        komunitin_config(tokens=HandedTokens("minted"), token_url="https://auth.test/token")
    )
    connector.get_balance("acc-1")
    assert [c.request.headers["Authorization"] for c in mock.calls] == ["Bearer minted"] * 2


@pytest.mark.parametrize(
    ("tokens", "options"),
    [
        (None, {"currency": ""}),
        (False, {}),  # neither a token source nor a token_url
        (False, {"token_provider": "gateway.auth.minting:komunitin_token"}),  # no dotted paths
        (None, {"read_timeout": 0}),
    ],
)
def test_misconfiguration_is_a_permanent_error(tokens, options):
    with pytest.raises(PermanentError) as caught:
        KomunitinConnector(komunitin_config(tokens=tokens, **options))
    assert caught.value.code == "misconfigured"


def test_a_refused_token_is_asked_for_again_once(mock):
    mock.get(CURRENCY, status=401)
    mock.get(CURRENCY, json=currency_doc())
    mock.get(f"{ACCOUNTS}/acc-1", status=401)
    tokens = HandedTokens("old", "new")
    connector = KomunitinConnector(komunitin_config(tokens=tokens))
    with pytest.raises(AuthError):
        connector.get_balance("acc-1")
    sent = [c.request.headers["Authorization"] for c in mock.calls]
    assert sent[:2] == ["Bearer old", "Bearer new"]

"""The sandbox's partner API, driven through the TimeRepublik connector over real HTTP."""

from __future__ import annotations

import pytest
import requests

from connectors.errors import AuthError, ConflictError, PermanentError
from connectors.interface import MemberData, TransferData
from tests.sandbox.conftest import UNCHECKED


def member(n: int, **extra) -> MemberData:
    fields = {
        "external_id": f"m-{n}",
        "email": f"member{n}@example.org",
        "display_name": f"Member {n}",
        "locale": "it",
        "skills": ["cucina"],
    }
    fields.update(extra)
    return MemberData(**fields)


def transfer(payer: str, payee: str, minutes: int, ref: str, **extra) -> TransferData:
    return TransferData(payer, payee, minutes, extra.pop("description", "Aiuto"), ref, **extra)


def token(sandbox) -> str:
    reply = requests.post(
        f"{sandbox.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("gateway", "test-client-secret"),
        timeout=5,
    )
    return reply.json()["access_token"]


def test_register_transfer_list_and_reverse(sandbox, tr):
    ada = tr.register_member(member(1), "reg-1")
    assert ada.status == "active"
    assert tr.get_balance(ada.wallet_id).minutes == 0
    clearing = sandbox.clearing_wallet()

    sent = tr.create_transfer(transfer(clearing, ada.wallet_id, 90, "gw-txn-1"), "push-1")
    assert (sent.minutes, sent.status, sent.reversal_of) == (90, "completed", None)
    assert tr.get_balance(ada.wallet_id).minutes == 90

    page = tr.list_transfers(None, 100)
    assert [t.id for t in page.items] == [sent.id]
    assert page.items[0].external_reference == "gw-txn-1"
    assert page.next_cursor is None

    reversal = tr.reverse_transfer(sent.id, "rev-1")
    assert reversal.reversal_of == sent.id
    assert (reversal.payer_wallet_id, reversal.payee_wallet_id) == (ada.wallet_id, clearing)
    assert tr.get_balance(ada.wallet_id).minutes == 0
    listed = {t.id: t for t in tr.list_transfers(None, 100).items}
    assert listed[sent.id].status == "reversed"
    assert listed[reversal.id].reversal_of == sent.id

    with pytest.raises(ConflictError) as again:
        tr.reverse_transfer(sent.id, "rev-2")
    assert again.value.existing_id == reversal.id
    with pytest.raises(PermanentError):
        tr.reverse_transfer(reversal.id, "rev-3")  # a reversal is not itself reversed


def test_occurred_at_is_kept(tr, sandbox):
    from datetime import UTC, datetime

    ada = tr.register_member(member(1), "reg-1")
    when = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    tr.create_transfer(
        transfer(sandbox.clearing_wallet(), ada.wallet_id, 30, "r1", occurred_at=when), "k"
    )
    headers = {"Authorization": f"Bearer {token(sandbox)}"}
    listed = requests.get(f"{sandbox.url}/v1/transfers", headers=headers, timeout=5).json()
    assert listed["data"][0]["occurred_at"] == "2026-03-01T09:30:00Z"


def test_idempotency_key_replays_the_first_answer(sandbox, tr):
    ada = tr.register_member(member(1), "reg-1")
    clearing = sandbox.clearing_wallet()
    first = tr.create_transfer(transfer(clearing, ada.wallet_id, 60, "gw-txn-1"), "push-1")
    second = tr.create_transfer(transfer(clearing, ada.wallet_id, 60, "gw-txn-1"), "push-1")
    assert second == first
    assert len(tr.list_transfers(None, 100).items) == 1
    assert tr.get_balance(ada.wallet_id).minutes == 60
    assert tr.register_member(member(1), "reg-1") == ada


def test_a_replay_is_marked_and_byte_identical(sandbox, tr):
    ada = tr.register_member(member(1), "reg-1")
    body = {
        "payer_wallet_id": sandbox.clearing_wallet(),
        "payee_wallet_id": ada.wallet_id,
        "minutes": 15,
        "description": "x",
        "external_reference": "r-1",
    }
    headers = {"Authorization": f"Bearer {token(sandbox)}", "Idempotency-Key": "same"}
    url = f"{sandbox.url}/v1/transfers"
    first = requests.post(url, json=body, headers=headers, timeout=5)
    again = requests.post(url, json=body, headers=headers, timeout=5)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers


def test_errors_are_replayed_too(sandbox, tr):
    headers = {"Authorization": f"Bearer {token(sandbox)}", "Idempotency-Key": "bad-1", **UNCHECKED}
    url = f"{sandbox.url}/v1/transfers"
    body = {
        "payer_wallet_id": "w_x",
        "payee_wallet_id": "w_y",
        "minutes": 5,
        "description": "",
        "external_reference": "r",
    }
    first = requests.post(url, json=body, headers=headers, timeout=5)
    again = requests.post(url, json=body, headers=headers, timeout=5)
    assert first.status_code == again.status_code == 422
    assert first.headers["Content-Type"] == "application/problem+json"
    assert again.json() == first.json()


def test_same_key_with_another_body_is_refused(sandbox, tr):
    ada = tr.register_member(member(1), "reg-1")
    clearing = sandbox.clearing_wallet()
    tr.create_transfer(transfer(clearing, ada.wallet_id, 60, "gw-txn-1"), "push-1")
    with pytest.raises(PermanentError) as caught:
        tr.create_transfer(transfer(clearing, ada.wallet_id, 61, "gw-txn-1"), "push-1")
    assert caught.value.code == "idempotency_mismatch"
    assert caught.value.status == 422


def test_a_missing_idempotency_key_is_a_validation_error(sandbox):
    headers = {"Authorization": f"Bearer {token(sandbox)}", **UNCHECKED}
    reply = requests.post(
        f"{sandbox.url}/v1/members",
        json={"external_id": "x", "email": "x@example.org", "display_name": "X"},
        headers=headers,
        timeout=5,
    )
    assert reply.status_code == 422
    assert reply.json()["code"] == "validation_error"


def test_member_exists_for_our_member_links_for_a_native_conflicts(sandbox, tr):
    natives = sandbox.control("POST", "seed")["members"]
    ada = tr.register_member(member(1), "reg-1")
    # A second outbox row for the same member (new key): the connector finds ours again.
    assert tr.register_member(member(1), "reg-2").id == ada.id
    with pytest.raises(ConflictError) as other:
        tr.register_member(member(2, email="MEMBER1@example.org"), "reg-3")
    assert (other.value.code, other.value.existing_id) == ("member_exists", ada.id)
    with pytest.raises(ConflictError) as native:
        tr.register_member(member(3, email=natives[0]["email"]), "reg-4")
    assert native.value.existing_id is None  # someone else's member: link through OAuth


def test_validation_errors_name_the_fields(sandbox):
    headers = {"Authorization": f"Bearer {token(sandbox)}", "Idempotency-Key": "k", **UNCHECKED}
    reply = requests.post(
        f"{sandbox.url}/v1/members",
        json={"external_id": "x", "email": "not-an-email", "display_name": "x" * 121},
        headers=headers,
        timeout=5,
    )
    assert reply.status_code == 422
    problem = reply.json()
    assert problem["code"] == "validation_error"
    assert set(problem["errors"]) == {"email", "display_name"}


def test_insufficient_balance_and_credit_limit(sandbox, tr):
    ada = tr.register_member(member(1), "reg-1")
    bob = tr.register_member(member(2), "reg-2")
    tr.create_transfer(transfer(ada.wallet_id, bob.wallet_id, 600, "r1"), "k1")  # to the limit
    with pytest.raises(PermanentError) as caught:
        tr.create_transfer(transfer(ada.wallet_id, bob.wallet_id, 1, "r2"), "k2")
    assert caught.value.code == "insufficient_balance"
    assert tr.get_balance(ada.wallet_id).minutes == -600


def test_duplicate_reference_resolves_to_our_transfer(sandbox, tr):
    ada = tr.register_member(member(1), "reg-1")
    clearing = sandbox.clearing_wallet()
    first = tr.create_transfer(transfer(clearing, ada.wallet_id, 30, "gw-txn-7"), "push-1")
    # Another key, same reference and contents: the transfer is ours, already made.
    assert tr.create_transfer(transfer(clearing, ada.wallet_id, 30, "gw-txn-7"), "push-2") == first
    with pytest.raises(ConflictError) as caught:
        tr.create_transfer(transfer(clearing, ada.wallet_id, 45, "gw-txn-7"), "push-3")
    assert caught.value.existing_id == first.id
    assert len(tr.list_transfers(None, 100).items) == 1


def test_update_erase_and_closed_wallets(sandbox, tr):
    ada = tr.register_member(member(1), "reg-1")
    updated = tr.update_member(ada.id, member(1, display_name="Ada L.", locale="en"), "upd-1")
    assert updated.id == ada.id
    assert tr.find_member("member1@example.org").id == ada.id
    tr.erase_member(ada.id, "erase-1")
    tr.erase_member(ada.id, "erase-2")  # erasing twice is fine
    assert tr.find_member("member1@example.org") is None
    with pytest.raises(PermanentError) as closed:
        tr.create_transfer(transfer(sandbox.clearing_wallet(), ada.wallet_id, 30, "r1"), "k1")
    assert closed.value.code == "wallet_closed"
    # The address is free again.
    again = tr.register_member(member(9, email="member1@example.org"), "reg-9")
    assert again.id != ada.id


def test_unknown_wallets_and_members(sandbox, tr):
    with pytest.raises(PermanentError) as caught:
        tr.get_balance("w_nope")
    assert caught.value.status == 404
    tr.erase_member("m_nope", "k")  # gone counts as erased
    with pytest.raises(PermanentError) as unknown:
        tr.create_transfer(transfer("w_nope", sandbox.clearing_wallet(), 5, "r"), "k2")
    assert unknown.value.code == "validation_error"


def test_cursor_pagination_oldest_first(sandbox, tr):
    ada = tr.register_member(member(1), "reg-1")
    clearing = sandbox.clearing_wallet()
    made = [
        tr.create_transfer(transfer(clearing, ada.wallet_id, 5, f"r{i}"), f"k{i}").id
        for i in range(5)
    ]
    seen, cursor, cursors = [], None, []
    for _ in range(10):  # bounded: 3 pages expected
        page = tr.list_transfers(cursor, 2)
        seen += [t.id for t in page.items]
        if page.next_cursor is None:
            break
        cursors.append(page.next_cursor)
        cursor = page.next_cursor
    assert seen == made
    # Polling later from the last cursor returns the tail and what is new.
    newer = tr.create_transfer(transfer(clearing, ada.wallet_id, 5, "r-new"), "k-new").id
    assert [t.id for t in tr.list_transfers(cursors[-1], 10).items] == [made[4], newer]
    with pytest.raises(PermanentError):
        tr.list_transfers("not-a-cursor", 2)


def test_bad_credentials_are_an_auth_error(sandbox):
    from connectors.interface import PlatformConfig
    from connectors.timerepublik import TimeRepublikConnector

    wrong = TimeRepublikConnector(
        PlatformConfig("sandbox", sandbox.url, {"client_id": "gateway", "client_secret": "nope"})
    )
    with pytest.raises(AuthError) as caught:
        wrong.get_balance(sandbox.clearing_wallet())
    assert caught.value.code == "invalid_client"


def test_revoked_tokens_are_refreshed_once(sandbox, tr):
    assert tr.get_balance(sandbox.clearing_wallet()).minutes == 0
    assert sandbox.control("POST", "tokens/revoke")["revoked"] == 1
    assert tr.get_balance(sandbox.clearing_wallet()).minutes == 0
    assert tr.client.tokens.fetches == 2


def test_scopes_are_enforced(sandbox):
    reply = requests.post(
        f"{sandbox.url}/oauth/token",
        data={"grant_type": "client_credentials", "scope": "transfers:read"},
        auth=("gateway", "test-client-secret"),
        timeout=5,
    )
    read_only = reply.json()["access_token"]
    denied = requests.post(
        f"{sandbox.url}/v1/transfers",
        json={},
        headers={"Authorization": f"Bearer {read_only}", "Idempotency-Key": "k", **UNCHECKED},
        timeout=5,
    )
    assert denied.status_code == 403
    assert denied.json()["code"] == "insufficient_scope"


def test_seed_is_idempotent_and_reset_forgets(sandbox, tr):
    first = sandbox.control("POST", "seed")
    assert first["transfers_created"] == 3
    second = sandbox.control("POST", "seed")
    assert second["transfers_created"] == 0
    assert second["members"] == first["members"]
    ada = tr.register_member(member(1), "reg-1")
    sandbox.control("POST", "reset")
    with pytest.raises(PermanentError):
        tr.get_balance(ada.wallet_id)  # new token after the reset wiped them, then 404
    assert tr.register_member(member(1), "reg-1").id != ada.id  # keys were forgotten too

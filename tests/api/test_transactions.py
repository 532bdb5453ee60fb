"""POST /transactions, GET /transactions/{id} and POST /transactions/{id}/reversal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.db import db
from gateway.ledger import services as ledger
from gateway.members.models import Member
from tests.api.conftest import with_key

PROBLEM = "application/problem+json"


def desk(world, minutes=180, **extra) -> dict:
    """Anna uses a desk at the cooperative."""
    return {
        "payer": {"member_id": world.anna},
        "payee": {"organization_id": world.coop},
        "minutes": minutes,
        "kind": "desk",
        **extra,
    }


def balance(app, account_id: str) -> int:
    with app.app_context():
        return ledger.get_balance(account_id)


def test_member_posts_a_desk_as_payer(app, client, world):
    response = client.post(
        "/api/v1/transactions",
        json=desk(world, description="Scrivania, mattina"),
        headers=with_key(world.anna_headers),
    )
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == f"/api/v1/transactions/{body['id']}"
    assert body["kind"] == "desk"
    assert body["minutes"] == 180
    assert body["description"] == "Scrivania, mattina"
    assert body["payer_account_id"] == world.anna_account
    assert body["payee_account_id"] == world.coop_account
    assert body["entries"] == [
        {"account_id": world.anna_account, "amount_minutes": -180, "balance_after_minutes": -180},
        {"account_id": world.coop_account, "amount_minutes": 180, "balance_after_minutes": 180},
    ]
    assert body["reversal_of"] is None
    assert body["reversed_by"] is None
    assert body["source"] == "api"
    assert body["links"]["reversal"] == f"/api/v1/transactions/{body['id']}/reversal"
    assert balance(app, world.anna_account) == -180
    assert balance(app, world.coop_account) == 180


def test_website_client_posts_help_between_members(app, client, world):
    response = client.post(
        "/api/v1/transactions",
        json={
            "payer": {"member_id": world.bruno},  # bruno was helped
            "payee": {"account_id": world.anna_account},  # anna helped
            "minutes": 120,
            "kind": "help",
            "occurred_at": "2026-03-01T10:00:00+01:00",
        },
        headers=with_key(world.website_headers),
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["occurred_at"] == "2026-03-01T09:00:00+00:00"
    assert balance(app, world.anna_account) == 120
    assert balance(app, world.bruno_account) == -120


def test_member_token_may_not_post_for_another_payer(app, client, world):
    response = client.post(
        "/api/v1/transactions",
        json={
            "payer": {"member_id": world.bruno},
            "payee": {"member_id": world.anna},
            "minutes": 60,
            "kind": "help",
        },
        headers=with_key(world.anna_headers),
    )
    assert response.status_code == 403
    assert response.mimetype == PROBLEM
    assert response.get_json()["code"] == "forbidden"
    assert balance(app, world.bruno_account) == 0


def test_posting_past_the_credit_limit_is_refused_with_the_facts(app, client, world):
    response = client.post(
        "/api/v1/transactions", json=desk(world, minutes=601), headers=with_key(world.anna_headers)
    )
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["code"] == "credit_limit_exceeded"
    assert problem["type"].endswith("/credit-limit-exceeded")
    assert (
        problem["account_id"],
        problem["balance_minutes"],
        problem["credit_limit_minutes"],
        problem["attempted_minutes"],
    ) == (world.anna_account, 0, -600, -601)
    assert "may not go below -600" in problem["detail"]
    assert balance(app, world.anna_account) == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"minutes": 0}, "minutes"),
        ({"minutes": 14_401}, "minutes"),
        ({"minutes": 1.5}, "minutes"),
        ({"minutes": "60"}, "minutes"),
        ({"kind": "gift"}, "kind"),
        ({"description": "x" * 501}, "description"),
        ({"occurred_at": "2026-03-01T10:00:00"}, "occurred_at"),
        ({"occurred_at": "1999-12-31T23:00:00Z"}, "occurred_at"),
        ({"occurred_at": "0001-01-01T00:00:00+01:00"}, "occurred_at"),
        ({"surprise": True}, "surprise"),
        ({"payer": {}}, "payer"),
        ({"payer": {"member_id": "not-a-uuid"}}, "payer"),
    ],
)
def test_invalid_fields_are_refused_with_field_messages(client, world, change, field):
    response = client.post(
        "/api/v1/transactions", json=desk(world, **change), headers=with_key(world.anna_headers)
    )
    assert response.status_code == 422
    assert response.mimetype == PROBLEM
    problem = response.get_json()
    assert problem["code"] == "validation"
    assert field in problem["errors"]


def test_future_occurred_at_is_refused(client, world):
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    response = client.post(
        "/api/v1/transactions",
        json=desk(world, occurred_at=future),
        headers=with_key(world.anna_headers),
    )
    assert response.status_code == 422
    assert "occurred_at" in response.get_json()["errors"]


def test_a_party_names_exactly_one_account(client, world):
    response = client.post(
        "/api/v1/transactions",
        json=desk(world, payee={"organization_id": world.coop, "member_id": world.bruno}),
        headers=with_key(world.anna_headers),
    )
    assert response.status_code == 422
    assert response.get_json()["errors"]["payee"] == {
        "_schema": ["Give exactly one of member_id, organization_id or account_id."]
    }


@pytest.mark.parametrize(
    ("payer", "payee", "kind", "field"),
    [
        ("anna", "bruno", "desk", "kind"),  # a desk is paid to an organization
        ("anna", "coop", "help", "kind"),  # help is between members
        ("anna", "anna", "transfer", "payee"),
    ],
)
def test_kind_and_parties_must_fit(client, world, payer, payee, kind, field):
    def party(name):
        return (
            {"organization_id": world.coop}
            if name == "coop"
            else {"member_id": getattr(world, name)}
        )

    response = client.post(
        "/api/v1/transactions",
        json={"payer": party(payer), "payee": party(payee), "minutes": 10, "kind": kind},
        headers=with_key(world.website_headers),
    )
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_unknown_and_inactive_parties_are_refused(app, client, world):
    unknown = "00000000-0000-4000-8000-000000000000"
    for payee, field in (
        ({"member_id": unknown}, "member_id"),
        ({"organization_id": unknown}, "organization_id"),
        ({"account_id": unknown}, "account_id"),
    ):
        response = client.post(
            "/api/v1/transactions",
            json={**desk(world), "kind": "transfer", "payee": payee},
            headers=with_key(world.anna_headers),
        )
        assert response.status_code == 422
        assert field in response.get_json()["errors"]["payee"]
    with app.app_context():
        db.session.get(Member, world.bruno).status = "disabled"
        db.session.commit()
    response = client.post(
        "/api/v1/transactions",
        json={**desk(world), "kind": "help", "payee": {"account_id": world.bruno_account}},
        headers=with_key(world.anna_headers),
    )
    assert response.status_code == 422
    assert "no active member" in response.get_json()["errors"]["payee"]["member_id"][0]


def test_clearing_accounts_cannot_be_named(app, client, world):
    with app.app_context():
        clearing = ledger.clearing_account("platform-1").id
        db.session.commit()
    response = client.post(
        "/api/v1/transactions",
        json={**desk(world), "kind": "transfer", "payee": {"account_id": clearing}},
        headers=with_key(world.website_headers),
    )
    assert response.status_code == 422
    assert "Clearing" in response.get_json()["errors"]["payee"]["account_id"][0]


def test_scopes_and_tokens_are_enforced(client, world, app):
    assert client.post("/api/v1/transactions", json=desk(world)).status_code == 401
    with app.app_context():
        from tests.factories import bearer_headers

        reader = bearer_headers("hours:read")
    response = client.post("/api/v1/transactions", json=desk(world), headers=with_key(reader))
    assert response.status_code == 403
    assert response.mimetype == PROBLEM


def test_body_must_be_json(client, world):
    response = client.post(
        "/api/v1/transactions",
        data="minutes=5",
        content_type="application/x-www-form-urlencoded",
        headers=with_key(world.anna_headers),
    )
    assert response.status_code == 415
    response = client.post(
        "/api/v1/transactions",
        data="{not json",
        content_type="application/json",
        headers=with_key(world.anna_headers),
    )
    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_json"
    response = client.post(
        "/api/v1/transactions", json=[1, 2], headers=with_key(world.anna_headers)
    )
    assert response.status_code == 422


def _post_desk(client, world, minutes=60) -> dict:
    response = client.post(
        "/api/v1/transactions",
        json=desk(world, minutes=minutes),
        headers=with_key(world.anna_headers),
    )
    assert response.status_code == 201
    return response.get_json()


def test_reading_a_transaction(client, world, app):
    txn = _post_desk(client, world)
    url = f"/api/v1/transactions/{txn['id']}"
    assert client.get(url, headers=world.anna_headers).get_json() == txn
    assert client.get(url, headers=world.bruno_headers).status_code == 403
    assert client.get(url, headers=world.admin_headers).status_code == 200
    with app.app_context():
        from tests.factories import bearer_headers

        other_client = bearer_headers("transactions:write")
    assert client.get(url, headers=other_client).status_code == 403
    missing = client.get("/api/v1/transactions/nope", headers=world.admin_headers)
    assert missing.status_code == 404
    assert missing.get_json()["code"] == "transaction_not_found"


def test_client_reads_what_it_posted(client, world):
    response = client.post(
        "/api/v1/transactions",
        json=desk(world),
        headers=with_key(world.website_headers),
    )
    url = response.headers["Location"]
    assert client.get(url, headers=world.website_headers).status_code == 200


def test_reversal_restores_and_is_linked(app, client, world):
    txn = _post_desk(client, world, minutes=90)
    response = client.post(
        txn["links"]["reversal"],
        json={"reason": "Registrata due volte"},
        headers=with_key(world.website_headers),
    )
    assert response.status_code == 201
    reversal = response.get_json()
    assert reversal["kind"] == "reversal"
    assert reversal["reversal_of"] == txn["id"]
    assert reversal["description"] == "Registrata due volte"
    assert reversal["payer_account_id"] == world.coop_account
    assert balance(app, world.anna_account) == 0
    assert balance(app, world.coop_account) == 0
    original = client.get(f"/api/v1/transactions/{txn['id']}", headers=world.admin_headers)
    assert original.get_json()["reversed_by"] == reversal["id"]
    assert original.get_json()["links"]["reversal"] == f"/api/v1/transactions/{reversal['id']}"


def test_reversal_is_refused_twice_and_for_a_reversal(client, world):
    txn = _post_desk(client, world)
    url = f"/api/v1/transactions/{txn['id']}/reversal"
    first = client.post(url, json={"reason": "x"}, headers=with_key(world.website_headers))
    again = client.post(url, json={"reason": "y"}, headers=with_key(world.website_headers))
    assert again.status_code == 409
    assert again.get_json()["code"] == "already_reversed"
    of_reversal = client.post(
        f"/api/v1/transactions/{first.get_json()['id']}/reversal",
        json={"reason": "z"},
        headers=with_key(world.website_headers),
    )
    assert of_reversal.status_code == 409


def test_member_reverses_only_what_it_received(client, world):
    response = client.post(
        "/api/v1/transactions",
        json={
            "payer": {"member_id": world.anna},
            "payee": {"member_id": world.bruno},
            "minutes": 30,
            "kind": "help",
        },
        headers=with_key(world.anna_headers),
    )
    url = f"/api/v1/transactions/{response.get_json()['id']}/reversal"
    by_payer = client.post(url, json={"reason": "undo"}, headers=with_key(world.anna_headers))
    assert by_payer.status_code == 403
    refund = client.post(url, json={"reason": "refund"}, headers=with_key(world.bruno_headers))
    assert refund.status_code == 201


def test_reversal_of_unknown_transaction_and_missing_reason(client, world):
    missing = client.post(
        "/api/v1/transactions/nope/reversal",
        json={"reason": "x"},
        headers=with_key(world.website_headers),
    )
    assert missing.status_code == 404
    txn = _post_desk(client, world)
    no_reason = client.post(
        f"/api/v1/transactions/{txn['id']}/reversal",
        json={},
        headers=with_key(world.website_headers),
    )
    assert no_reason.status_code == 422
    assert "reason" in no_reason.get_json()["errors"]


def test_first_postings_in_opposite_directions_do_not_deadlock(app, world):
    # Members without accounts yet: each posting creates both on demand. Two postings creating
    # the same two in opposite orders used to wait on each other's inserts (PostgreSQL).
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from tests.factories import create_member

    with app.app_context():
        pairs = [(create_member().id, create_member().id) for _ in range(4)]
    barrier = threading.Barrier(2)

    def post(payer: str, payee: str) -> int:
        barrier.wait()
        response = app.test_client().post(
            "/api/v1/transactions",
            json={
                "payer": {"member_id": payer},
                "payee": {"member_id": payee},
                "minutes": 10,
                "kind": "help",
            },
            headers=with_key(world.website_headers),
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        for first, second in pairs:
            statuses = list(pool.map(post, (first, second), (second, first)))
            assert statuses == [201, 201]
    with app.app_context():
        for first, second in pairs:
            assert ledger.get_balance(ledger.account_for_member(first).id) == 0
            assert ledger.get_balance(ledger.account_for_member(second).id) == 0

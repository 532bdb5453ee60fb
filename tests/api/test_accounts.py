"""GET /accounts/{id} and its statement; GET /members/me."""

from __future__ import annotations

import pytest

from tests.api.conftest import make_client, token_headers, with_key
from tests.factories import create_member


def _help(client, world, minutes: int) -> None:
    response = client.post(
        "/api/v1/transactions",
        json={
            "payer": {"member_id": world.anna},
            "payee": {"member_id": world.bruno},
            "minutes": minutes,
            "kind": "help",
            "description": f"help {minutes}",
        },
        headers=with_key(world.anna_headers),
    )
    assert response.status_code == 201


def test_member_reads_its_own_account(client, world):
    _help(client, world, 45)
    response = client.get(f"/api/v1/accounts/{world.anna_account}", headers=world.anna_headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == world.anna_account
    assert body["kind"] == "member"
    assert body["member_id"] == world.anna
    assert body["balance_minutes"] == -45
    assert body["credit_limit_minutes"] == -600
    assert body["available_minutes"] == 555
    assert body["links"] == {
        "self": f"/api/v1/accounts/{world.anna_account}",
        "transactions": f"/api/v1/accounts/{world.anna_account}/transactions",
    }


def test_member_may_not_read_another_account_but_admin_may(client, world):
    url = f"/api/v1/accounts/{world.bruno_account}"
    refused = client.get(url, headers=world.anna_headers)
    assert refused.status_code == 403
    assert refused.mimetype == "application/problem+json"
    assert client.get(url, headers=world.admin_headers).status_code == 200
    organization = client.get(f"/api/v1/accounts/{world.coop_account}", headers=world.admin_headers)
    assert organization.get_json()["organization_id"] == world.coop


def test_client_token_without_admin_reads_no_account(client, world):
    response = client.get(f"/api/v1/accounts/{world.anna_account}", headers=world.website_headers)
    assert response.status_code == 403  # transactions:write alone does not read balances


def test_unknown_account_is_404(client, world):
    response = client.get("/api/v1/accounts/nope", headers=world.admin_headers)
    assert response.status_code == 404
    assert response.get_json()["code"] == "account_not_found"


def test_statement_pages_with_cursor_and_link_header(client, world):
    for minutes in (10, 20, 30):
        _help(client, world, minutes)
    url = f"/api/v1/accounts/{world.anna_account}/transactions"
    first = client.get(f"{url}?limit=2", headers=world.anna_headers)
    assert first.status_code == 200
    page = first.get_json()
    assert page["account_id"] == world.anna_account
    assert page["balance_minutes"] == -60
    assert [item["amount_minutes"] for item in page["items"]] == [-30, -20]
    assert [item["balance_after_minutes"] for item in page["items"]] == [-60, -30]
    assert page["items"][0]["counterparty_account_ids"] == [world.bruno_account]
    assert page["items"][0]["description"] == "help 30"
    cursor = page["next_cursor"]
    assert first.headers["Link"] == f'<{url}?cursor={cursor}&limit=2>; rel="next"'
    second = client.get(f"{url}?limit=2&cursor={cursor}", headers=world.anna_headers).get_json()
    assert [item["amount_minutes"] for item in second["items"]] == [-10]
    assert second["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "status"),
    [("limit=0", 422), ("limit=201", 422), ("limit=x", 422), ("cursor=bogus", 400), ("x=1", 422)],
)
def test_statement_refuses_bad_paging(client, world, query, status):
    response = client.get(
        f"/api/v1/accounts/{world.anna_account}/transactions?{query}", headers=world.anna_headers
    )
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"


def test_statement_of_another_member_is_refused(client, world):
    url = f"/api/v1/accounts/{world.bruno_account}/transactions"
    assert client.get(url, headers=world.anna_headers).status_code == 403


def test_members_me_creates_the_account_on_first_use(app, client, world):
    with app.app_context():
        carla = create_member(display_name="Carla", municipio=6, locale="en")
        headers = token_headers(f"website-{world.anna}", "hours:read", carla.id)
    response = client.get("/api/v1/members/me", headers=headers)
    assert response.status_code == 200
    body = response.get_json()
    assert (body["id"], body["display_name"], body["locale"], body["municipio"]) == (
        carla.id,
        "Carla",
        "en",
        6,
    )
    assert body["account"]["balance_minutes"] == 0
    again = client.get("/api/v1/members/me", headers=headers).get_json()
    assert again["account"]["id"] == body["account"]["id"]


def test_members_me_needs_a_member_token(client, world):
    response = client.get("/api/v1/members/me", headers=world.admin_headers)
    assert response.status_code == 403
    assert response.get_json()["code"] == "member_token_required"
    assert client.get("/api/v1/members/me").status_code == 401


# -- a member by id (the ID token's sub) --------------------------------------------------------


def test_website_token_reads_any_member_and_account_by_id(app, client, world):
    with app.app_context():
        website = make_client(f"site-{world.anna}")
        headers = token_headers(website, "hours:read transactions:write")
    member = client.get(f"/api/v1/members/{world.bruno}", headers=headers)
    assert member.status_code == 200, member.get_json()
    assert member.get_json()["account"]["id"] == world.bruno_account
    account = client.get(f"/api/v1/accounts/{world.coop_account}", headers=headers)
    assert account.status_code == 200
    statement = client.get(f"/api/v1/accounts/{world.anna_account}/transactions", headers=headers)
    assert statement.status_code == 200


def test_member_token_reads_only_its_own_member_by_id(client, world):
    own = client.get(f"/api/v1/members/{world.anna}", headers=world.anna_headers)
    assert own.status_code == 200
    assert own.get_json()["id"] == world.anna
    other = client.get(f"/api/v1/members/{world.bruno}", headers=world.anna_headers)
    assert other.status_code == 403
    assert "insufficient_scope" in other.headers["WWW-Authenticate"]


@pytest.mark.parametrize("kind", ["third_party", "machine"])
def test_other_clients_own_tokens_read_no_member(app, client, world, kind):
    with app.app_context():
        other = make_client(f"{kind}-{world.anna}", kind=kind)
        headers = token_headers(other, "hours:read")
    for path in (f"/api/v1/members/{world.anna}", f"/api/v1/accounts/{world.anna_account}"):
        response = client.get(path, headers=headers)
        assert response.status_code == 403, path
        # A machine client never holds hours:read: its kind refuses it before this rule does.
        expected = "client_token_not_allowed" if kind == "third_party" else None
        assert response.get_json().get("code") == expected


def test_unknown_member_is_404_and_admin_reads_any(client, world):
    assert client.get("/api/v1/members/nope", headers=world.admin_headers).status_code == 404
    response = client.get(f"/api/v1/members/{world.anna}", headers=world.admin_headers)
    assert response.status_code == 200

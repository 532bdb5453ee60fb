"""Organizations: created and listed by operators (``admin``)."""

from __future__ import annotations

import pytest

from tests.api.conftest import with_key


def test_admin_creates_an_organization_with_its_account(client, world):
    response = client.post(
        "/api/v1/organizations",
        json={"name": "  Coworking Via Padova ", "kind": "company", "municipio": 2},
        headers=with_key(world.admin_headers),
    )
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == f"/api/v1/organizations/{body['id']}"
    assert (body["name"], body["kind"], body["municipio"]) == ("Coworking Via Padova", "company", 2)
    assert body["account"]["kind"] == "organization"
    assert body["account"]["credit_limit_minutes"] == -600
    assert body["account"]["balance_minutes"] == 0
    fetched = client.get(response.headers["Location"], headers=world.admin_headers)
    assert fetched.get_json() == body


def test_credit_limit_can_be_given_or_removed(client, world):
    def create(**fields):
        response = client.post(
            "/api/v1/organizations",
            json={"name": "Coop", **fields},
            headers=with_key(world.admin_headers),
        )
        assert response.status_code == 201
        return response.get_json()["account"]["credit_limit_minutes"]

    assert create(credit_limit_minutes=-60) == -60
    assert create(credit_limit_minutes=None) is None


def test_organizations_are_listed_by_name(client, world):
    for name in ("Zeta", "Alfa"):
        client.post(
            "/api/v1/organizations", json={"name": name}, headers=with_key(world.admin_headers)
        )
    response = client.get("/api/v1/organizations", headers=world.admin_headers)
    assert response.status_code == 200
    names = [item["name"] for item in response.get_json()["items"]]
    assert names == ["Alfa", "Cooperativa Il Grillo", "Zeta"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": "   "},
        {"name": "x" * 201},
        {"name": "Coop", "municipio": 10},
        {"name": "Coop", "kind": "club"},
        {"name": "Coop", "credit_limit_minutes": 5},
        {"name": "Coop", "website": "https://example.org"},
    ],
)
def test_invalid_organizations_are_refused(client, world, body):
    response = client.post(
        "/api/v1/organizations", json=body, headers=with_key(world.admin_headers)
    )
    assert response.status_code == 422
    assert response.get_json()["errors"]


def test_organizations_need_admin(client, world):
    assert client.get("/api/v1/organizations", headers=world.anna_headers).status_code == 403
    response = client.post(
        "/api/v1/organizations", json={"name": "X"}, headers=with_key(world.website_headers)
    )
    assert response.status_code == 403
    missing = client.get("/api/v1/organizations/nope", headers=world.admin_headers)
    assert missing.status_code == 404

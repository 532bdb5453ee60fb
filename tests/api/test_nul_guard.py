"""NUL characters are refused at the door, with the field named, and nothing is written."""

from __future__ import annotations

from sqlalchemy import func, select

from gateway.db import db
from gateway.ledger.models import Organization
from tests.api.conftest import with_key


def _organizations(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Organization))


def test_a_nul_in_a_json_body_is_422_naming_the_field(app, client, world):
    before = _organizations(app)
    response = client.post(
        "/api/v1/organizations",
        json={"name": "Coop\u0000erativa", "kind": "cooperative"},
        headers=with_key(world.admin_headers),
    )
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["errors"] == {
        "name": ["Must not contain the NUL character (U+0000)."]
    }
    assert _organizations(app) == before


def test_a_nul_deep_in_a_body_is_named_by_its_path(client, world):
    response = client.post(
        "/api/v1/transactions",
        json={
            "payer": {"member_id": world.anna},
            "payee": {"member_id": world.bruno},
            "minutes": 30,
            "kind": "help",
            "description": "ok",
            "tags": ["fine", "no\u0000"],
        },
        headers=with_key(world.website_headers),
    )
    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == ["tags.1"]


def test_a_nul_in_a_query_or_a_path(client, world):
    query = client.get(
        f"/api/v1/accounts/{world.anna_account}/transactions?cursor=a%00b",
        headers=world.anna_headers,
    )
    assert query.status_code == 422
    assert list(query.get_json()["errors"]) == ["cursor"]
    path = client.get("/api/v1/accounts/abc%00def", headers=world.anna_headers)
    assert path.status_code == 404
    assert path.mimetype == "application/problem+json"


def test_a_nul_in_a_page_form_gets_a_readable_page(client):
    response = client.post("/login", data={"email": "a@example.org", "password": "x\u0000y"})
    assert response.status_code == 422
    assert response.mimetype == "text/html"
    assert "NUL" in response.get_data(as_text=True)

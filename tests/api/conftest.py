"""API fixtures: a small community with accounts, and the tokens that act in it."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from gateway.auth.models import OAuthClient
from gateway.auth.scopes import SCOPES
from gateway.auth.tokens import issue_token
from gateway.db import db
from gateway.ledger import services as ledger
from tests.factories import create_member

_keys = itertools.count(1)


@dataclass
class World:
    """Ids of members, an organization and their accounts, and headers of tokens."""

    anna: str
    bruno: str
    coop: str
    anna_account: str
    bruno_account: str
    coop_account: str
    anna_headers: dict
    bruno_headers: dict
    website_headers: dict
    admin_headers: dict


def make_client(client_id: str, kind: str = "first_party", scope: str = " ".join(SCOPES)) -> str:
    """A committed client without a secret (hashing one is slow, and no test needs it)."""
    db.session.add(
        OAuthClient(client_id=client_id, kind=kind, name=client_id, scope=scope, grant_types=[])
    )
    db.session.commit()
    return client_id


def token_headers(client_id: str, scope: str, member_id: str | None = None) -> dict:
    """Authorization headers with a fresh token of ``client_id``."""
    return {"Authorization": f"Bearer {issue_token(client_id, scope, member_id=member_id)}"}


@pytest.fixture
def world(app) -> World:
    """Anna and Bruno (member tokens), a cooperative, the website's back end, an operator."""
    with app.app_context():
        anna, bruno = create_member(), create_member()
        coop = ledger.create_organization(name="Cooperativa Il Grillo", municipio=4)
        # Members' tokens come from the website's client, like its own client-credentials one.
        website, operator = make_client(f"website-{anna.id}"), make_client(f"ops-{anna.id}")
        result = World(
            anna=anna.id,
            bruno=bruno.id,
            coop=coop.id,
            anna_account=ledger.account_for_member(anna.id).id,
            bruno_account=ledger.account_for_member(bruno.id).id,
            coop_account=ledger.account_for_organization(coop.id).id,
            anna_headers=token_headers(website, "hours:read transactions:write", anna.id),
            bruno_headers=token_headers(website, "hours:read transactions:write", bruno.id),
            website_headers=token_headers(website, "transactions:write"),
            admin_headers=token_headers(operator, "admin hours:read transactions:write"),
        )
        db.session.commit()
    return result


def with_key(headers: dict, key: str | None = None) -> dict:
    """``headers`` plus an Idempotency-Key (a fresh one unless given)."""
    return {**headers, "Idempotency-Key": key or f"test-key-{next(_keys)}"}

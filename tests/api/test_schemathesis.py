"""schemathesis against /openapi.json: no 5xx, and every response conforms to the document.

Generated ids rarely name a row, so path ids and party ids in bodies are swapped for real ones
half of the time: both the 404/422 paths and the successful ones are exercised.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.db import db
from gateway.ledger import services as ledger
from gateway.members.models import Member
from tests.api.conftest import token_headers

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture
def real_ids(app, world) -> dict[str, list[str]]:
    """Ids that exist, by the parameter or field name that carries them."""
    with app.app_context():
        txn = ledger.post_transfer(
            payer_account_id=world.anna_account,
            payee_account_id=world.coop_account,
            minutes=30,
            description="seed",
            kind="desk",
        )
        db.session.commit()
        return {
            "account_id": [world.anna_account, world.bruno_account, world.coop_account],
            "member_id": [world.anna, world.bruno],
            "organization_id": [world.coop],
            "transaction_id": [txn.id],
        }


@pytest.fixture
def operator_headers(app, world) -> dict:
    """An operator's token with every scope: reads all, posts as anna, answers /members/me."""
    with app.app_context():
        db.session.get(Member, world.anna).is_admin = True
        db.session.commit()
        return token_headers(
            f"website-{world.anna}", "admin hours:read transactions:write", world.anna
        )


def _use_real_ids(case, ids: dict[str, list[str]], chooser: random.Random) -> None:
    for name in list(case.path_parameters or {}):
        if name in ids and chooser.random() < 0.5:
            case.path_parameters[name] = chooser.choice(ids[name])
    if isinstance(case.body, dict):
        for side in ("payer", "payee"):
            party = case.body.get(side)
            if isinstance(party, dict) and len(party) == 1:
                (name,) = party
                if name in ids and chooser.random() < 0.5:
                    party[name] = chooser.choice(ids[name])


# pytest 9 has no Function._nodeid, which schemathesis.pytest.from_fixture still reads: each
# operation's strategy is driven by Hypothesis here instead, in one test per generation mode.
@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_document(app, real_ids, operator_headers, mode):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    statuses: Counter[int] = Counter()
    exercised = 0

    for operation in operations:

        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def call(case):
            if mode == GenerationMode.POSITIVE:
                chooser = random.Random(repr(case.body) + repr(case.path_parameters))  # noqa: S311
                _use_real_ids(case, real_ids, chooser)
            response = case.call_and_validate(headers=operator_headers, checks=CHECKS)
            statuses[response.status_code // 100 * 100] += 1

        try:
            call()
        except Unsatisfiable:
            # Nothing to make invalid (no parameters, no body): only possible when negative.
            assert mode == GenerationMode.NEGATIVE
            continue
        exercised += 1

    assert exercised >= (len(operations) if mode == GenerationMode.POSITIVE else 6)
    assert statuses[400] > 0
    if mode == GenerationMode.POSITIVE:
        assert statuses[200] > 0  # the real ids let some requests succeed
    assert statuses[500] == 0

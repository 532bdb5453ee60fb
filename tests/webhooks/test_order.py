"""A member's events wait for the previous one; an operator's retry or skip lets them go."""

from __future__ import annotations

import json

import pytest
import responses

from gateway.admin import actions
from gateway.db import db
from gateway.ledger import services as ledger
from gateway.members import accounts
from gateway.sync.claims import DEPENDENCY_FAILED, follow_dependencies
from tests.factories import create_member
from tests.sync.sandbox_partner import drain_once
from tests.webhooks.conftest import RECEIVER, event_rows

PASSWORD = "a long enough passphrase 42"


class _Receiver:
    """Refuses the first event it sees for good (400), takes the rest; records them."""

    def __init__(self) -> None:
        self.calls = 0
        self.taken: list[dict] = []

    def __call__(self, request):
        self.calls += 1
        if self.calls == 1:
            return 400, {}, "no thanks"
        self.taken.append(json.loads(request.body))
        return 204, {}, ""


@pytest.mark.parametrize("operator_does", ["retry", "skip"])
@responses.activate
def test_a_dead_event_holds_the_members_next_ones_until_an_operator_acts(
    app, subscribed, operator_does
):
    receiver = _Receiver()
    responses.add_callback(responses.POST, RECEIVER, callback=receiver)
    with app.app_context():
        member = accounts.create_member("order@example.org", "Order", PASSWORD)
        db.session.commit()
        accounts.mark_verified(member)
        db.session.commit()
        for _ in range(3):
            drain_once(subscribed.platform_id)
        head, verified = event_rows(subscribed.platform_id)
        assert (head.state, head.last_error_code) == ("dead", "http_400")
        assert (verified.state, verified.last_error_code) == ("dead", DEPENDENCY_FAILED)
        assert receiver.taken == []  # nothing overtook the refused event

        # Later events of the member wait behind the dead ones; another member's do not.
        other = create_member()
        ledger.post_transfer(
            payer_account_id=ledger.account_for_member(member.id).id,
            payee_account_id=ledger.account_for_member(other.id).id,
            minutes=5,
            description="late",
        )
        db.session.commit()
        accounts.erase_member(member)
        db.session.commit()
        for _ in range(3):
            drain_once(subscribed.platform_id)
        assert [(e["type"], e["data"]["member_id"]) for e in receiver.taken] == [
            ("balance.changed", other.id)
        ]

        if operator_does == "retry":
            actions.retry_item("member:op", head.id)
        else:
            actions.skip_item("member:op", head.id, "the site cannot take it")
            follow_dependencies()  # the sweeper's catch-all
            db.session.commit()
        for _ in range(6):
            drain_once(subscribed.platform_id)
        rows = event_rows(subscribed.platform_id)
        member_id = member.id
    assert rows[0].state == ("succeeded" if operator_does == "retry" else "skipped")
    assert {row.state for row in rows[1:]} == {"succeeded"}
    theirs = [
        e["type"]
        for e in receiver.taken
        if member_id in (e["data"].get("member_id"), e["data"].get("payer_member_id"))
    ]
    expected = ["member.created"] if operator_does == "retry" else []
    assert theirs == [
        *expected,
        "member.verified",
        "transaction.posted",
        "balance.changed",
        "member.deleted",
    ]

"""A member's events wait for the previous one; an operator's retry or skip lets them go."""

from __future__ import annotations

import json

import pytest
import responses

from gateway.admin import actions
from gateway.db import db
from gateway.members import accounts
from gateway.sync.claims import DEPENDENCY_FAILED, follow_dependencies
from tests.sync.sandbox_partner import drain_once
from tests.webhooks.conftest import RECEIVER, event_rows

PASSWORD = "a long enough passphrase 42"


def _three_events_of_one_member() -> None:
    member = accounts.create_member("order@example.org", "Order", PASSWORD)
    db.session.commit()
    accounts.mark_verified(member)
    db.session.commit()
    accounts.erase_member(member)
    db.session.commit()


class _Receiver:
    """Refuses the first event it sees for good (400), takes the rest; records types."""

    def __init__(self) -> None:
        self.calls = 0
        self.taken: list[str] = []

    def __call__(self, request):
        self.calls += 1
        if self.calls == 1:
            return 400, {}, "no thanks"
        self.taken.append(json.loads(request.body)["type"])
        return 204, {}, ""


@pytest.mark.parametrize("operator_does", ["retry", "skip"])
@responses.activate
def test_a_dead_event_holds_the_members_next_ones_until_an_operator_acts(
    app, subscribed, operator_does
):
    receiver = _Receiver()
    responses.add_callback(responses.POST, RECEIVER, callback=receiver)
    with app.app_context():
        _three_events_of_one_member()
        for _ in range(3):
            drain_once(subscribed.platform_id)
        head, *rest = event_rows(subscribed.platform_id)
        assert (head.state, head.last_error_code) == ("dead", "http_400")
        assert [(r.state, r.last_error_code) for r in rest] == [("dead", DEPENDENCY_FAILED)] * 2
        assert receiver.taken == []  # nothing overtook the refused event

        if operator_does == "retry":
            actions.retry_item("member:op", head.id)
        else:
            actions.skip_item("member:op", head.id, "the site cannot take it")
            follow_dependencies()  # the sweeper's catch-all
            db.session.commit()
        for _ in range(4):
            drain_once(subscribed.platform_id)
        rows = event_rows(subscribed.platform_id)
    expected_head = "succeeded" if operator_does == "retry" else "skipped"
    assert [r.state for r in rows] == [expected_head, "succeeded", "succeeded"]
    delivered = ["member.created"] if operator_does == "retry" else []
    assert receiver.taken == [*delivered, "member.verified", "member.deleted"]

"""Hours that arrive through a partner's signed callback become ``transaction.imported``; its
reversal, ``transaction.reversed``: written when the callback is applied, once each."""

from __future__ import annotations

from collections import Counter

from rq import SimpleWorker

from tests.callbacks.conftest import signed, transfer_event
from tests.webhooks.conftest import event_rows


def _deliver(app, client, *events) -> None:
    for event in events:
        body, headers = signed(event)
        assert client.post("/callbacks/tr", data=body, headers=headers).status_code in (200, 202)
    with app.app_context():
        SimpleWorker([app.extensions["queue"]], connection=app.extensions["redis"]).work(burst=True)


def test_a_partners_transfer_and_its_reversal_become_events(app, client, linked, subscribed):
    alice, bob = linked
    transfer = transfer_event("t1", minutes=45)
    # The same transfer told twice is imported, and told to the website, once.
    _deliver(app, client, transfer, transfer_event("t1", minutes=45))
    _deliver(app, client, transfer_event("t2", payer="w-b", payee="w-a", reversal_of="t1"))
    with app.app_context():
        rows = event_rows(subscribed.platform_id)
        alice_id, bob_id = alice.id, bob.id
    types = Counter(row.payload["type"] for row in rows)
    assert types == {"transaction.imported": 1, "transaction.reversed": 1, "balance.changed": 4}
    imported = next(r.payload["data"] for r in rows if r.payload["type"] == "transaction.imported")
    assert imported["platform"] == "tr"
    assert imported["reference"] == "t1"
    assert (imported["payer_member_id"], imported["payee_member_id"]) == (alice_id, bob_id)
    assert imported["minutes"] == 45
    reversal = next(r.payload["data"] for r in rows if r.payload["type"] == "transaction.reversed")
    assert reversal["reversal_of"] == imported["id"]
    assert reversal["platform"] == "tr"

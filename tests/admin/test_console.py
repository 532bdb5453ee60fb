"""The operators' console: tabs and bulk actions, the item page, workers, the callback log,
reconciliation runs, members, the audit log; through the API and the pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
import responses
from rq import Worker

from gateway.admin import queries
from gateway.admin.models import AdminAction
from gateway.callbacks.models import InboxEvent
from gateway.db import db, utcnow
from gateway.federation.models import PlatformLink
from gateway.federation.platforms import add_platform
from gateway.members.models import Member
from gateway.sync.models import (
    OutboxItem,
    ReconciliationDifference,
    ReconciliationRun,
    SyncAttempt,
)
from tests.auth.oidc_helpers import log_in
from tests.callbacks.conftest import SECRET, signed, transfer_event
from tests.factories import bearer_headers, create_member

NEW_ENDPOINTS = [
    ("get", "/admin/api/work"),
    ("get", "/admin/api/reconciliation"),
    ("get", "/admin/api/callbacks/x"),
    ("get", "/admin/api/members/x"),
    ("post", "/admin/api/outbox/bulk"),
    ("post", "/admin/api/reconciliation/differences/x/resolve"),
]


@pytest.fixture
def failing(app, seeded):
    """Two items of 'tr' that failed once and wait to retry, one of them a member's."""
    with app.app_context():
        member = create_member(email="ada@example.org", display_name="Ada Lovelace")
        ids = []
        for n in range(2):
            item = OutboxItem(
                platform_id=seeded["platform_id"],
                kind="register_member" if n else "push_transfer",
                member_id=member.id if n else None,
                payload={"n": n},
                state="pending",
                attempts=1,
                last_error="HTTP 503",
                created_at=utcnow() - timedelta(minutes=3 - n),
            )
            db.session.add(item)
            db.session.flush()
            db.session.add(
                SyncAttempt(
                    outbox_id=item.id,
                    platform_id=seeded["platform_id"],
                    duration_ms=31,
                    outcome="retry",
                    error="HTTP 503",
                    error_code="http_503",
                )
            )
            ids.append(item.id)
        db.session.commit()
        return {"ids": ids, "member": member.id}


@pytest.mark.parametrize(("method", "path"), NEW_ENDPOINTS)
def test_new_endpoints_refuse_members_and_other_tokens(app, client, method, path):
    assert getattr(client, method)(path).status_code == 401
    with app.app_context():
        reader = bearer_headers("hours:read")
        member = create_member(email="plain@example.org")
    refused = getattr(client, method)(path, headers=reader)
    assert refused.status_code == 403
    assert refused.mimetype == "application/problem+json"
    log_in(client, member)
    assert getattr(client, method)(path).status_code == 403


@pytest.mark.parametrize("path", ["/admin/work", "/admin/reconciliation", "/admin/members/x"])
def test_new_pages_refuse_members(app, client, path):
    with app.app_context():
        member = create_member(email="plain@example.org")
    log_in(client, member)
    refused = client.get(path)
    assert refused.status_code == 403
    assert refused.mimetype == "text/html"


def test_tabs_count_and_filter(client, seeded, failing, admin_headers):
    body = client.get("/admin/api/outbox?tab=failing", headers=admin_headers).json
    assert sorted(i["id"] for i in body["items"]) == sorted(failing["ids"])
    assert body["counts"] == {"failing": 2, "dead": 1, "pending": 1, "succeeded": 1, "skipped": 0}
    mine = client.get(
        f"/admin/api/outbox?tab=failing&member={failing['member']}", headers=admin_headers
    ).json
    assert [i["id"] for i in mine["items"]] == [failing["ids"][1]]
    assert mine["counts"]["failing"] == 1
    kind = client.get(
        "/admin/api/outbox?tab=failing&kind=push_transfer&platform=tr", headers=admin_headers
    ).json
    assert [i["id"] for i in kind["items"]] == [failing["ids"][0]]
    other = client.get("/admin/api/outbox?tab=failing&platform=nope", headers=admin_headers)
    assert other.json["items"] == []


def test_bulk_retry_needs_the_confirmed_count_and_audits_each_item(
    app, client, seeded, failing, admin_headers
):
    body = {"action": "retry", "tab": "failing", "reason": "platform back up"}
    stale = client.post(
        "/admin/api/outbox/bulk", headers=admin_headers, json=body | {"expected": 3}
    )
    assert stale.status_code == 409
    assert stale.mimetype == "application/problem+json"
    unexplained = client.post(
        "/admin/api/outbox/bulk", headers=admin_headers, json={"action": "retry", "expected": 2}
    )
    assert unexplained.status_code == 422
    assert "reason" in unexplained.json["errors"]
    done = client.post("/admin/api/outbox/bulk", headers=admin_headers, json=body | {"expected": 2})
    assert done.json == {"action": "retry", "done": 2}
    with app.app_context():
        rows = db.session.query(AdminAction).filter_by(action="outbox.retry").all()
        assert sorted(r.target_id for r in rows) == sorted(failing["ids"])
        assert {r.reason for r in rows} == {"platform back up"}
        assert {r.details["attempts_before"] for r in rows} == {1}
    # Nothing already delivered is touched; a skip of the dead tab skips only the dead.
    skipped = client.post(
        "/admin/api/outbox/bulk",
        headers=admin_headers,
        json={"action": "skip", "tab": "dead", "reason": "cancelled", "expected": 1},
    )
    assert skipped.json["done"] == 1
    with app.app_context():
        assert db.session.get(OutboxItem, seeded["dead"]).state == "skipped"
        assert db.session.get(OutboxItem, seeded["succeeded"]).state == "succeeded"


def test_bulk_refuses_a_set_with_an_item_it_cannot_act_on(app, client, seeded, admin_headers):
    refused = client.post(
        "/admin/api/outbox/bulk",
        headers=admin_headers,
        json={"action": "retry", "tab": "succeeded", "reason": "again", "expected": 1},
    )
    assert refused.status_code == 409
    with app.app_context():
        assert db.session.query(AdminAction).count() == 0


def test_item_explains_itself_and_retry_keeps_its_history(client, seeded, failing, admin_headers):
    item_id = failing["ids"][1]
    detail = client.get(f"/admin/api/outbox/{item_id}", headers=admin_headers).json
    assert detail["payload"] == {"n": 1}
    assert detail["member"]["display_name"] == "Ada Lovelace"
    assert detail["next_attempt_at"]
    assert detail["created_at"]
    (attempt,) = detail["attempt_log"]
    assert attempt["duration_ms"] == 31
    assert attempt["outcome"] == "retry"
    assert attempt["error_code"] == "http_503"
    retried = client.post(f"/admin/api/outbox/{item_id}/retry", headers=admin_headers).json
    assert retried["attempts_total"] == 1
    assert len(retried["attempt_log"]) == 1
    (action,) = retried["actions"]
    assert action["action"] == "outbox.retry"
    assert action["details"]["attempts_before"] == 1


def test_work_state_says_no_worker_runs(client, operator_client, admin_headers):
    work = client.get("/admin/api/work", headers=admin_headers).json
    assert work["redis_ok"] is True
    assert work["workers_alive"] == 0
    assert work["workers"] == []
    assert work["queue_depth"] == 0
    assert work["scheduler_late"] is True
    assert work["redis_memory_bytes"] > 0
    html = operator_client.get("/admin").get_data(as_text=True)
    assert 'role="alert"' in html
    assert "No worker is running" in html


def test_callback_log_shows_every_state_and_the_payload(app, client, seeded, admin_headers):
    with app.app_context():
        db.session.add(
            InboxEvent(
                platform_id=seeded["platform_id"],
                webhook_id="evt_2",
                event_type="transfer.created",
                body='{"id": "t-1"}',
                state="processed",
                headers={"webhook-id": "evt_2", "webhook-timestamp": "1"},
            )
        )
        db.session.commit()
    every = client.get("/admin/api/callbacks", headers=admin_headers).json["items"]
    assert {e["state"] for e in every} == {"parked", "processed"}
    processed = client.get(
        "/admin/api/callbacks?state=processed&event_type=transfer.created", headers=admin_headers
    ).json["items"]
    (event,) = processed
    detail = client.get(f"/admin/api/callbacks/{event['id']}", headers=admin_headers).json
    assert detail["payload"] == {"id": "t-1"}
    # Stored without its signature header: the verdict says so rather than guessing.
    assert detail["signature"] == "missing"
    assert "webhook-signature" not in detail["headers"]


@pytest.fixture
def run_with_difference(app, seeded):
    with app.app_context():
        member = create_member(email="bea@example.org", display_name="Bea")
        run = ReconciliationRun(
            platform_id=seeded["platform_id"],
            state="succeeded",
            wallets_checked=4,
            imported=1,
            resent=2,
            differences=1,
            finished_at=utcnow(),
        )
        db.session.add(run)
        db.session.flush()
        difference = ReconciliationDifference(
            run_id=run.id,
            platform_id=seeded["platform_id"],
            member_id=member.id,
            remote_wallet_id="w-7",
            local_minutes=60,
            expected_remote_minutes=60,
            remote_minutes=30,
            difference_minutes=-30,
            pending_outbound_minutes=30,
            explanation="outbound_pending",
        )
        db.session.add(difference)
        db.session.commit()
        return {"run": run.id, "difference": difference.id, "member": member.id}


def test_reconciliation_runs_and_resolving_a_difference(
    app, client, operator_client, run_with_difference, admin_headers
):
    (run,) = client.get("/admin/api/reconciliation", headers=admin_headers).json["items"]
    assert run["wallets_checked"] == 4
    assert run["revived"] == 2
    assert run["open_differences"] == 1
    detail = client.get(f"/admin/api/reconciliation/{run['id']}", headers=admin_headers).json
    (difference,) = detail["difference_list"]
    assert difference["explanation"] == "outbound_pending"
    assert difference["member_name"] == "Bea"
    assert "outbox" in difference["resolutions"]
    # The overview never says "in sync" beside an open difference.
    html = operator_client.get("/admin").get_data(as_text=True)
    assert "1 open differences" in html
    resolved = client.post(
        f"/admin/api/reconciliation/differences/{difference['id']}/resolve",
        headers=admin_headers,
        json={"reason": "delivered meanwhile"},
    )
    assert resolved.json["open_differences"] == 0
    again = client.post(
        f"/admin/api/reconciliation/differences/{difference['id']}/resolve",
        headers=admin_headers,
        json={"reason": "twice"},
    )
    assert again.status_code == 409
    page = operator_client.get(f"/admin/reconciliation/{run['id']}").get_data(as_text=True)
    assert "Outbound items pending." in page


def test_audit_names_operators_and_filters_by_target(
    app, operator, operator_client, seeded, admin_headers, client
):
    with operator_client.session_transaction() as session:
        session["csrf"] = token = "a" * 43
    operator_client.post(f"/admin/outbox/{seeded['dead']}/retry", data={"csrf_token": token})
    client.post(f"/admin/api/outbox/{seeded['pending']}/retry", headers=admin_headers)
    mine = client.get(f"/admin/api/audit?target={seeded['dead']}", headers=admin_headers).json[
        "items"
    ]
    (row,) = mine
    assert row["actor_name"] == f"{operator.display_name} <{operator.email}>"
    page = operator_client.get("/admin/audit").get_data(as_text=True)
    assert f'href="/admin/outbox/{seeded["dead"]}"' in page
    assert operator.display_name in page


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        ("it", ["Operatore:", "In errore", "Falliti", "Invio scambio", "fallito definitivamente"]),
        ("en", ["Operator:", "Failing", "Dead", "Transfer push", "failed for good"]),
    ],
)
def test_every_page_speaks_the_operators_language(
    app, operator, operator_client, seeded, failing, run_with_difference, locale, words
):
    with app.app_context():
        db.session.get(Member, operator.id).locale = locale
        db.session.commit()
    pages = [
        "/admin",
        "/admin/outbox",
        f"/admin/outbox/{seeded['dead']}",
        "/admin/outbox/bulk?action=retry&tab=failing",
        "/admin/callbacks",
        f"/admin/callbacks/{seeded['event']}",
        "/admin/reconciliation",
        f"/admin/reconciliation/{run_with_difference['run']}",
        "/admin/work",
        "/admin/members?q=ada",
        f"/admin/members/{failing['member']}",
        "/admin/audit",
    ]
    seen = ""
    for path in pages:
        response = operator_client.get(path)
        assert response.status_code == 200, path
        seen += response.get_data(as_text=True)
    for word in words:
        assert word in seen, word
    # The outbox opens on the failing tab while anything fails.
    outbox = operator_client.get("/admin/outbox").get_data(as_text=True)
    assert 'data-tab="failing" aria-current="page"' in outbox


def test_bulk_from_the_page_confirms_first(app, operator_client, seeded, failing):
    confirm = operator_client.get("/admin/outbox/bulk?action=retry&tab=failing")
    assert "retry 2 items" in confirm.get_data(as_text=True)
    with operator_client.session_transaction() as session:
        session["csrf"] = token = "b" * 43
    done = operator_client.post(
        "/admin/outbox/bulk",
        data={
            "csrf_token": token,
            "action": "retry",
            "tab": "failing",
            "expected": "2",
            "reason": "fault cleared",
        },
    )
    assert done.status_code == 302
    assert done.headers["Location"] == "/admin/outbox?tab=failing"
    with app.app_context():
        assert db.session.query(AdminAction).filter_by(reason="fault cleared").count() == 2


def _summary(**changes):
    summary = {
        "enabled": True,
        "circuit": "closed",
        "outbox": {"dead": 0},
        "last_attempt_failed": False,
        "retrying": 0,
        "sync_lag_seconds": 0,
        "last_reconciliation": {"open_differences": 0, "state": "succeeded"},
        "error_rate_last_hour": 0.0,
    }
    return summary | changes


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({}, "ok"),
        ({"last_reconciliation": None}, "ok"),
        ({"last_reconciliation": {"open_differences": 2, "state": "succeeded"}}, "differences"),
        ({"last_reconciliation": {"open_differences": 0, "state": "partial"}}, "differences"),
        ({"error_rate_last_hour": 0.5}, "recovering"),
        ({"retrying": 1, "error_rate_last_hour": 0.5}, "degraded"),
        ({"outbox": {"dead": 1}}, "failing"),
        ({"circuit": "open", "outbox": {"dead": 1}}, "circuit_open"),
    ],
)
def test_in_sync_only_without_differences_or_errors(changes, status):
    assert queries.status_of(_summary(**changes)) == status


def test_member_page_warns_when_the_remote_balance_differs(
    app, client, operator_client, seeded, admin_headers
):
    with app.app_context():
        member = create_member(email="gio@example.org", display_name="Gio")
        db.session.add(
            PlatformLink(
                member_id=member.id,
                platform_id=seeded["platform_id"],
                remote_member_id="m-1",
                remote_wallet_id="w-1",
                state="active",
            )
        )
        db.session.commit()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(
            "https://tr.example/api/oauth/token",
            json={"access_token": "t", "token_type": "Bearer", "expires_in": 3600},
        )
        mock.get(
            "https://tr.example/api/v1/wallets/w-1",
            json={
                "id": "w-1",
                "member_id": "m-1",
                "balance_minutes": 45,
                "credit_limit_minutes": 600,
                "updated_at": "2026-11-30T10:00:00Z",
            },
        )
        detail = client.get(f"/admin/api/members/{member.id}", headers=admin_headers).json
        html = operator_client.get(f"/admin/members/{member.id}").get_data(as_text=True)
    (link,) = detail["links"]
    assert link["remote_balance"] == {"minutes": 45, "error": None}
    assert link["balance_differs"] is True
    assert 'data-differs="true"' in html
    assert "differs from the local balance (0 min)" in html


def test_a_received_callback_still_verifies(app, client, admin_headers):
    with app.app_context():
        add_platform(
            "cb",
            "timerepublik",
            "https://cb.test/api",
            credentials={"client_id": "gw", "client_secret": "s"},
            webhook_secrets=[SECRET],
        )
        db.session.commit()
    body, headers = signed(transfer_event("t-1"))
    received = client.post("/callbacks/cb", data=body, headers=headers)
    assert received.status_code == 202
    detail = client.get(f"/admin/api/callbacks/{received.json['id']}", headers=admin_headers).json
    assert detail["signature"] == "valid"
    assert detail["payload"]["data"]["id"] == "t-1"


def test_work_state_lists_a_live_worker(app, client, admin_headers):
    worker = Worker([app.extensions["queue"]], connection=app.extensions["redis"])
    worker.register_birth()
    try:
        work = client.get("/admin/api/work", headers=admin_headers).json
    finally:
        worker.register_death()
    assert work["workers_alive"] == 1
    (seen,) = work["workers"]
    assert seen["name"] == worker.name
    assert seen["current_job"] is None


def test_lag_at_each_hour_is_the_oldest_item_waiting_then(app, client, admin_headers):
    from datetime import datetime

    with app.app_context():
        platform = add_platform("lagged", "timerepublik", "https://l.test/api")
        now = utcnow()
        created, done = now - timedelta(hours=3), now - timedelta(minutes=90)
        db.session.add(
            OutboxItem(
                platform_id=platform.id,
                kind="push_transfer",
                state="succeeded",
                attempts=1,
                created_at=created,
                completed_at=done,
            )
        )
        db.session.commit()
    hours = client.get("/admin/api/activity?platform=lagged", headers=admin_headers).json["items"]
    waited = []
    for hour in hours:
        moment = min(datetime.fromisoformat(hour["hour"]) + timedelta(hours=1), now)
        expected = (moment - created).total_seconds() if created < moment < done else 0
        assert hour["lag_seconds"] == pytest.approx(expected, abs=5), hour
        waited.append(hour["lag_seconds"] > 0)
    assert sum(waited) in (1, 2)  # the hour ends that fell inside its 90-minute wait
    assert sum(h["delivered"] for h in hours) == 1

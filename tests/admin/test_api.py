"""The admin API: who may use it, what it shows, and what its actions change and log."""

from __future__ import annotations

import pytest

from gateway.admin.models import AdminAction
from gateway.db import db
from gateway.sync.models import OutboxItem
from tests.auth.oidc_helpers import log_in
from tests.factories import bearer_headers, create_member


def test_needs_an_admin_token_or_an_operator_session(app, client, seeded):
    assert client.get("/admin/api/platforms").status_code == 401
    with app.app_context():
        reader = bearer_headers("hours:read")
        member = create_member(email="plain@example.org")
    wrong = client.get("/admin/api/platforms", headers=reader)
    assert wrong.status_code == 403
    assert wrong.mimetype == "application/problem+json"
    log_in(client, member)
    assert client.get("/admin/api/platforms").status_code == 403


def test_platform_overview(client, seeded, admin_headers):
    body = client.get("/admin/api/platforms", headers=admin_headers).json
    (tr,) = body["items"]
    assert tr["name"] == "tr"
    assert tr["status"] == "failing"
    assert tr["outbox"]["dead"] == 1
    assert tr["outbox"]["pending"] == 1
    assert tr["outbox"]["succeeded"] == 1
    assert tr["sync_lag_seconds"] >= 500
    assert tr["attempts_last_hour"] == 3
    assert tr["error_rate_last_hour"] == pytest.approx(0.333, abs=0.001)
    assert tr["circuit"] == "closed"
    assert tr["last_success_at"]
    one = client.get("/admin/api/platforms/tr", headers=admin_headers)
    assert one.json["name"] == "tr"
    assert client.get("/admin/api/platforms/nope", headers=admin_headers).status_code == 404


def test_outbox_filters_and_pagination(client, seeded, admin_headers):
    dead = client.get("/admin/api/outbox?state=dead", headers=admin_headers).json
    assert [i["id"] for i in dead["items"]] == [seeded["dead"]]
    assert dead["items"][0]["last_error"] == "HTTP 503 from the platform"
    first = client.get("/admin/api/outbox?limit=2", headers=admin_headers).json
    assert len(first["items"]) == 2
    assert first["next_cursor"]
    rest = client.get(
        f"/admin/api/outbox?limit=2&cursor={first['next_cursor']}", headers=admin_headers
    ).json
    ids = [i["id"] for i in first["items"] + rest["items"]]
    assert sorted(ids) == sorted([seeded["dead"], seeded["pending"], seeded["succeeded"]])
    assert rest["next_cursor"] is None
    bad = client.get("/admin/api/outbox?state=lost&limit=0", headers=admin_headers)
    assert bad.status_code == 422
    assert set(bad.json["errors"]) == {"state", "limit"}
    assert client.get("/admin/api/outbox?cursor=zzz", headers=admin_headers).status_code == 400
    detail = client.get(f"/admin/api/outbox/{seeded['dead']}", headers=admin_headers).json
    assert detail["attempt_log"][0]["outcome"] == "dead"


def test_retry_and_skip_change_state_and_are_audited(app, client, seeded, admin_headers):
    retried = client.post(f"/admin/api/outbox/{seeded['dead']}/retry", headers=admin_headers)
    assert retried.status_code == 200
    assert retried.json["state"] == "pending"
    assert retried.json["attempts"] == 0
    again = client.post(f"/admin/api/outbox/{seeded['succeeded']}/retry", headers=admin_headers)
    assert again.status_code == 409
    missing = client.post(
        f"/admin/api/outbox/{seeded['pending']}/skip", headers=admin_headers, json={}
    )
    assert missing.status_code == 422
    assert "reason" in missing.json["errors"]
    skipped = client.post(
        f"/admin/api/outbox/{seeded['pending']}/skip",
        headers=admin_headers,
        json={"reason": "member asked to cancel"},
    )
    assert skipped.json["state"] == "skipped"
    assert skipped.json["skipped_reason"] == "member asked to cancel"
    with app.app_context():
        actions = db.session.query(AdminAction).order_by(AdminAction.created_at).all()
        assert [a.action for a in actions] == ["outbox.retry", "outbox.skip"]
        assert actions[1].reason == "member asked to cancel"
        assert actions[0].actor.startswith("client:")
        assert db.session.get(OutboxItem, seeded["pending"]).state == "skipped"
    audit = client.get("/admin/api/audit?action=outbox.skip", headers=admin_headers).json
    assert [a["target_id"] for a in audit["items"]] == [seeded["pending"]]


def test_session_writes_need_csrf(app, operator_client, seeded):
    refused = operator_client.post(f"/admin/api/outbox/{seeded['dead']}/retry")
    assert refused.status_code == 400
    with operator_client.session_transaction() as session:
        session["csrf"] = token = "k" * 43
    done = operator_client.post(
        f"/admin/api/outbox/{seeded['dead']}/retry", headers={"X-CSRF-Token": token}
    )
    assert done.status_code == 200
    with app.app_context():
        (action,) = db.session.query(AdminAction).all()
        assert action.actor.startswith("member:")


def test_callbacks_reprocess_and_reconcile(app, client, seeded, admin_headers):
    parked = client.get("/admin/api/callbacks", headers=admin_headers).json
    assert parked["items"][0]["parked_reason"] == "unknown wallet w-9"
    result = client.post(f"/admin/api/callbacks/{seeded['event']}/reprocess", headers=admin_headers)
    assert result.status_code == 200
    assert result.json["state"] in ("parked", "ignored", "failed", "processed")
    queued = client.post("/admin/api/platforms/tr/reconcile", headers=admin_headers)
    assert queued.status_code == 202
    assert queued.json["job_id"]
    with app.app_context():
        kinds = {a.action for a in db.session.query(AdminAction)}
    assert kinds == {"callback.reprocess", "platform.reconcile"}


def test_member_search_and_activity(app, client, seeded, admin_headers):
    with app.app_context():
        luca = create_member(email="luca@example.org", display_name="Luca Bianchi")
    for q in ("luca@", "BIANCHI", "uca b", luca.id[4:12]):
        found = client.get(f"/admin/api/members?q={q}", headers=admin_headers).json["items"]
        assert [m["display_name"] for m in found] == ["Luca Bianchi"], q
    detail = client.get(f"/admin/api/members/{luca.id}", headers=admin_headers).json
    assert detail["local_balance_minutes"] == 0
    assert detail["links"] == []
    assert detail["postings"] == []
    assert detail["outbox"] == []
    assert client.get("/admin/api/members", headers=admin_headers).status_code == 422
    assert client.get("/admin/api/members/nope", headers=admin_headers).status_code == 404
    hours = client.get("/admin/api/activity?hours=24", headers=admin_headers).json["items"]
    assert len(hours) == 24
    # One delivered and one dead item: items, however many attempts each took.
    assert sum(h["delivered"] for h in hours) == 1
    assert sum(h["dead"] for h in hours) == 1
    assert sum(h["failed_attempts"] for h in hours) == 1
    # The lag now is the age of the oldest item still waiting (the pending one, 9 minutes),
    # the same figure as the platforms' sync lag.
    (tr,) = client.get("/admin/api/platforms", headers=admin_headers).json["items"]
    assert hours[-1]["lag_seconds"] == pytest.approx(tr["sync_lag_seconds"], abs=2)
    assert hours[-1]["lag_seconds"] >= 540

"""Enabling a disabled subscription again and changing its events or description: the
domain rules, the CLI and ``/admin/api/webhooks/<id>``, with their audit rows and refusals."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from gateway.admin.models import AdminAction
from gateway.db import db
from gateway.members import accounts
from gateway.webhooks.subscriptions import (
    WebhookError,
    disable_subscription,
    enable_subscription,
    get_subscription,
    update_subscription,
)
from tests.auth.oidc_helpers import log_in
from tests.factories import bearer_headers, create_member
from tests.webhooks.conftest import event_rows, event_types, subscribe
from tests.webhooks.test_cli import _add, _run

PASSWORD = "a long enough password"


@pytest.fixture
def admin_headers(app):
    with app.app_context():
        return bearer_headers("admin")


def _actions(app) -> list[tuple[str, str, dict]]:
    with app.app_context():
        rows = db.session.scalars(select(AdminAction).order_by(AdminAction.created_at)).all()
        return [(a.action, a.target_id, a.details) for a in rows]


def test_skipped_events_stay_skipped_and_new_ones_flow_after_enabling(app):
    with app.app_context():
        subscribed = subscribe(events=("member.created",))
        before = accounts.create_member("before@example.org", "Before", PASSWORD).id
        db.session.commit()
        disable_subscription("test", get_subscription(subscribed.id))
        db.session.commit()
        accounts.create_member("during@example.org", "During", PASSWORD)
        db.session.commit()
        enable_subscription("test", get_subscription(subscribed.id))
        db.session.commit()
        after = accounts.create_member("after@example.org", "After", PASSWORD).id
        db.session.commit()
        rows = event_rows(subscribed.platform_id)
        # The event of the disabled period was never written; the skipped one stays skipped.
        assert [(r.member_id, r.state) for r in rows] == [
            (before, "skipped"),
            (after, "pending"),
        ]
        subscription = get_subscription(subscribed.id)
        assert subscription.platform.enabled is True
        assert subscription.row.disabled_at is None
        with pytest.raises(WebhookError, match="enabled already"):
            enable_subscription("test", subscription)
        (enabled,) = db.session.scalars(
            select(AdminAction).where(AdminAction.action == "webhook.enable")
        ).all()
        assert enabled.target_id == subscribed.id
        assert enabled.details["disabled_at"]


def test_changed_events_apply_to_events_written_from_now_on(app):
    with app.app_context():
        subscribed = subscribe(events=("member.created",))
        accounts.create_member("one@example.org", "One", PASSWORD)
        db.session.commit()
        subscription = get_subscription(subscribed.id)
        assert update_subscription(
            "test", subscription, ["member.verified"], description=" the site "
        )
        db.session.commit()
        accounts.create_member("two@example.org", "Two", PASSWORD)
        db.session.commit()
        # The queued member.created row is sent as it is; no new one is written.
        assert event_types(subscribed.platform_id) == ["member.created"]
        subscription = get_subscription(subscribed.id)
        assert subscription.row.description == "the site"
        assert subscription.platform.display_name == "Webhook the site"
        assert update_subscription("test", subscription, ["member.verified"], "the site") is False
        with pytest.raises(WebhookError) as refused:
            update_subscription("test", subscription, ["member.eaten"])
        assert refused.value.field == "events"
        with pytest.raises(WebhookError) as refused:
            update_subscription("test", subscription, [])
        assert refused.value.field == "events"
        with pytest.raises(WebhookError) as refused:
            update_subscription("test", subscription, description="x" * 201)
        assert refused.value.field == "description"
        (update,) = db.session.scalars(
            select(AdminAction).where(AdminAction.action == "webhook.update")
        ).all()
        assert update.details == {
            "events": {"before": ["member.created"], "after": ["member.verified"]},
            "description": {"before": "", "after": "the site"},
        }


def test_cli_enable_and_update(app, app_config):
    document = json.loads(_add(app_config, "--json").output)
    not_disabled = _run(app_config, "webhooks", "enable", document["id"])
    assert not_disabled.exit_code == 2
    assert "enabled already" in not_disabled.output
    assert _run(app_config, "webhooks", "disable", document["id"]).exit_code == 0
    enabled = _run(app_config, "webhooks", "enable", document["id"])
    assert enabled.exit_code == 0, enabled.output
    assert "stay skipped" in enabled.output
    updated = _run(
        app_config,
        "webhooks",
        "update",
        document["id"],
        "--event",
        "member.created",
        "--description",
        "the website",
        "--json",
    )
    assert updated.exit_code == 0, updated.output
    shown = json.loads(updated.output)
    assert (shown["events"], shown["description"], shown["enabled"]) == (
        ["member.created"],
        "the website",
        True,
    )
    assert shown["changed"] is True
    same = _run(app_config, "webhooks", "update", document["id"], "--description", "the website")
    assert same.exit_code == 0, same.output
    assert "Nothing changed" in same.output
    nothing = _run(app_config, "webhooks", "update", document["id"])
    assert nothing.exit_code == 2
    assert "--event" in nothing.output
    unknown = _run(app_config, "webhooks", "update", document["id"], "--event", "member.eaten")
    assert unknown.exit_code == 2
    assert "Unknown event type(s): member.eaten" in unknown.output
    assert _run(app_config, "webhooks", "enable", "nope").exit_code == 2
    assert _run(app_config, "webhooks", "update", "nope", "--description", "x").exit_code == 2
    assert [a[0] for a in _actions(app)] == [
        "webhook.add",
        "webhook.disable",
        "webhook.enable",
        "webhook.update",
    ]
    assert {a[1] for a in _actions(app)} == {document["id"]}


def _api_add(client, headers) -> dict:
    added = client.post(
        "/admin/api/webhooks",
        json={"url": "https://site.example/hooks", "events": ["member.created"]},
        headers=headers,
    )
    assert added.status_code == 201, added.json
    return added.json


def test_api_enable_and_patch(app, client, admin_headers):
    document = _api_add(client, admin_headers)
    base = f"/admin/api/webhooks/{document['id']}"
    conflict = client.post(f"{base}/enable", headers=admin_headers)
    assert conflict.status_code == 409
    assert conflict.mimetype == "application/problem+json"
    assert client.post(f"{base}/disable", headers=admin_headers).status_code == 200
    enabled = client.post(f"{base}/enable", headers=admin_headers)
    assert enabled.status_code == 200, enabled.json
    assert enabled.json["enabled"] is True
    patched = client.patch(
        base,
        json={"events": ["balance.changed", "member.created"], "description": "site"},
        headers=admin_headers,
    )
    assert patched.status_code == 200, patched.json
    assert patched.json["events"] == ["balance.changed", "member.created"]
    assert patched.json["description"] == "site"
    assert patched.json["changed"] is True
    assert "secret" not in patched.json
    again = client.patch(base, json={"description": "site"}, headers=admin_headers)
    assert again.json["changed"] is False
    assert [a[0] for a in _actions(app)] == [
        "webhook.add",
        "webhook.disable",
        "webhook.enable",
        "webhook.update",
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "_schema"),
        ({"events": []}, "events"),
        ({"events": ["member.eaten"]}, "events"),
        ({"events": "member.created"}, "events"),
        ({"description": "x" * 201}, "description"),
    ],
)
def test_api_patch_refuses_bad_bodies(app, client, admin_headers, body, field):
    document = _api_add(client, admin_headers)
    refused = client.patch(
        f"/admin/api/webhooks/{document['id']}", json=body, headers=admin_headers
    )
    assert refused.status_code == 422
    assert refused.mimetype == "application/problem+json"
    assert field in refused.json["errors"]
    assert [a[0] for a in _actions(app)] == ["webhook.add"]


def test_api_refusals_for_unknown_and_non_operators(app, client, admin_headers):
    for call in (
        lambda h: client.post("/admin/api/webhooks/nope/enable", headers=h),
        lambda h: client.patch("/admin/api/webhooks/nope", json={"description": "x"}, headers=h),
    ):
        missing = call(admin_headers)
        assert missing.status_code == 404
        assert missing.mimetype == "application/problem+json"
        anonymous = call({})
        assert anonymous.status_code == 401
        assert anonymous.mimetype == "application/problem+json"
    with app.app_context():
        reader = bearer_headers("hours:read transactions:write")
        member = create_member(email="plain@example.org")
    document = _api_add(client, admin_headers)
    base = f"/admin/api/webhooks/{document['id']}"
    for call in (
        lambda h: client.post(f"{base}/enable", headers=h),
        lambda h: client.patch(base, json={"description": "x"}, headers=h),
    ):
        refused = call(reader)
        assert refused.status_code == 403
        assert refused.mimetype == "application/problem+json"
    log_in(client, member)
    assert client.patch(base, json={"description": "x"}).status_code == 403
    assert [a[0] for a in _actions(app)] == ["webhook.add"]


def test_api_session_writes_need_csrf(app, admin_headers):
    with app.app_context():
        operator = create_member(email="op@example.org", is_admin=True, locale="en")
    client = app.test_client()
    log_in(client, operator)
    document = _api_add(client, admin_headers)
    refused = client.patch(f"/admin/api/webhooks/{document['id']}", json={"description": "x"})
    assert refused.status_code == 400
    assert refused.mimetype == "application/problem+json"
    with client.session_transaction() as session:
        session["csrf"] = token = "w" * 43
    accepted = client.patch(
        f"/admin/api/webhooks/{document['id']}",
        json={"description": "x"},
        headers={"X-CSRF-Token": token},
    )
    assert accepted.status_code == 200, accepted.json

"""``/admin/api/webhooks``: who may call it, what it refuses, and the audit rows it writes."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.admin.models import AdminAction
from gateway.db import db
from tests.auth.oidc_helpers import log_in
from tests.factories import bearer_headers, create_member

BODY = {"url": "https://site.example/hooks", "events": ["member.created", "balance.changed"]}


@pytest.fixture
def admin_headers(app):
    with app.app_context():
        return bearer_headers("admin")


def _add(client, headers, body=BODY):
    return client.post("/admin/api/webhooks", json=body, headers=headers)


def test_needs_an_admin_token_or_an_operator_session(app, client):
    assert client.get("/admin/api/webhooks").status_code == 401
    anonymous = _add(client, {})
    assert anonymous.status_code == 401
    assert anonymous.mimetype == "application/problem+json"
    with app.app_context():
        reader = bearer_headers("hours:read transactions:write")
        member = create_member(email="plain@example.org")
    for call in (
        lambda h: client.get("/admin/api/webhooks", headers=h),
        lambda h: _add(client, h),
        lambda h: client.post("/admin/api/webhooks/x/disable", headers=h),
        lambda h: client.post("/admin/api/webhooks/x/secrets/rotate", json={}, headers=h),
    ):
        refused = call(reader)
        assert refused.status_code == 403
        assert refused.mimetype == "application/problem+json"
    log_in(client, member)
    assert client.get("/admin/api/webhooks").status_code == 403
    with app.app_context():
        assert db.session.scalars(select(AdminAction)).all() == []


def test_add_list_show_rotate_disable(app, client, admin_headers):
    added = _add(client, admin_headers, BODY | {"description": "the website"})
    assert added.status_code == 201, added.json
    document = added.json
    assert document["secret"].startswith("whsec_")
    assert document["description"] == "the website"
    listed = client.get("/admin/api/webhooks", headers=admin_headers).json["items"]
    assert [item["id"] for item in listed] == [document["id"]]
    assert "secret" not in listed[0]
    one = client.get(f"/admin/api/webhooks/{document['id']}", headers=admin_headers)
    assert one.json["events"] == BODY["events"]
    rotated = client.post(
        f"/admin/api/webhooks/{document['id']}/secrets/rotate",
        json={"grace_seconds": 60},
        headers=admin_headers,
    )
    assert rotated.status_code == 200
    assert rotated.json["secret"] != document["secret"]
    assert len(rotated.json["secrets"]) == 2
    assert rotated.json["previous_signs_until"]
    disabled = client.post(f"/admin/api/webhooks/{document['id']}/disable", headers=admin_headers)
    assert disabled.status_code == 200
    assert disabled.json["enabled"] is False
    again = client.post(f"/admin/api/webhooks/{document['id']}/disable", headers=admin_headers)
    assert again.status_code == 409
    assert again.mimetype == "application/problem+json"
    with app.app_context():
        actions = db.session.scalars(select(AdminAction).order_by(AdminAction.created_at)).all()
        assert [a.action for a in actions] == [
            "webhook.add",
            "webhook.rotate_secret",
            "webhook.disable",
        ]
        assert {a.actor for a in actions} == {actions[0].actor}
        assert actions[0].actor.startswith("client:")
        assert all(a.target_id == document["id"] for a in actions)
        assert document["secret"] not in str([a.details for a in actions])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "https://a.example/", "events": ["member.eaten"]}, "events"),
        ({"url": "https://a.example/", "events": []}, "events"),
        ({"url": "https://a.example/"}, "events"),
        ({"url": "http://site.example/hooks", "events": ["member.created"]}, "url"),
        ({"url": "ftp://site.example/", "events": ["member.created"]}, "url"),
        ({"url": "https://u:p@site.example/", "events": ["member.created"]}, "url"),
        ({"events": ["member.created"]}, "url"),
    ],
)
def test_bad_subscriptions_are_refused(app, client, admin_headers, body, field):
    refused = _add(client, admin_headers, body)
    assert refused.status_code == 422
    assert refused.mimetype == "application/problem+json"
    assert field in refused.json["errors"]
    with app.app_context():
        assert db.session.scalars(select(AdminAction)).all() == []


def test_http_on_localhost_is_refused_in_production(make_app, admin_headers):
    production = make_app(GATEWAY_ENV="production", SESSION_COOKIE_SECURE=False)
    with production.app_context():
        headers = bearer_headers("admin")
    refused = _add(
        production.test_client(),
        headers,
        {"url": "http://localhost:8000/hooks", "events": ["member.created"]},
    )
    assert refused.status_code == 422
    assert "https" in refused.json["detail"]


def test_unknown_subscription(client, admin_headers):
    for path in ("/admin/api/webhooks/nope", "/admin/api/webhooks/nope/disable"):
        call = client.get if path.endswith("nope") else client.post
        missing = call(path, headers=admin_headers)
        assert missing.status_code == 404
        assert missing.mimetype == "application/problem+json"


def test_an_operators_session_may_manage_subscriptions(app, client):
    with app.app_context():
        operator = create_member(email="op@example.org", is_admin=True, locale="en")
    log_in(client, operator)
    assert client.get("/admin/api/webhooks").status_code == 200

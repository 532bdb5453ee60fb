"""Operators disable and enable a member from the console and the admin API: a reason is
required, every login and token of the member ends, one audit row each, the audit page names
the action, and nobody else may do it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.admin.models import AdminAction
from gateway.db import db
from gateway.members.models import Member
from tests.auth.oidc_helpers import log_in
from tests.factories import bearer_headers, create_member

PASSWORD = "gio's long enough password"


@pytest.fixture
def gio(app):
    with app.app_context():
        return create_member(email="gio@example.org", display_name="Gio", password=PASSWORD)


def _status(app, member) -> str:
    with app.app_context():
        return db.session.get(Member, member.id).status


def _audit(app) -> list[tuple[str, str, str | None]]:
    with app.app_context():
        rows = db.session.scalars(select(AdminAction).order_by(AdminAction.created_at))
        return [(a.action, a.target_id, a.reason) for a in rows]


def _csrf(client) -> str:
    with client.session_transaction() as session:
        session["csrf"] = token = "c" * 43
    return token


def test_disabling_from_the_page_ends_the_members_logins(app, operator_client, gio):
    theirs = app.test_client()
    log_in(theirs, gio)
    assert theirs.get("/account").status_code == 200
    page = operator_client.get(f"/admin/members/{gio.id}").get_data(as_text=True)
    assert "Disable the account" in page

    token = _csrf(operator_client)
    no_reason = operator_client.post(
        f"/admin/members/{gio.id}/disable", data={"csrf_token": token, "reason": ""}
    )
    assert no_reason.status_code == 302
    assert _status(app, gio) == "active"

    done = operator_client.post(
        f"/admin/members/{gio.id}/disable",
        data={"csrf_token": token, "reason": "reported abuse"},
        follow_redirects=True,
    )
    assert "Account disabled" in done.get_data(as_text=True)
    assert "Enable the account" in done.get_data(as_text=True)
    assert _status(app, gio) == "disabled"
    assert theirs.get("/account").status_code == 302

    operator_client.post(
        f"/admin/members/{gio.id}/enable", data={"csrf_token": token, "reason": "cleared"}
    )
    assert _status(app, gio) == "active"
    assert _audit(app) == [
        ("member.disable", gio.id, "reported abuse"),
        ("member.enable", gio.id, "cleared"),
    ]
    audit = operator_client.get("/admin/audit").get_data(as_text=True)
    assert "Member disabled" in audit
    assert "Member enabled" in audit


def test_the_page_refuses_a_post_without_csrf(app, operator_client, gio):
    refused = operator_client.post(f"/admin/members/{gio.id}/disable", data={"reason": "abuse"})
    assert refused.status_code in (400, 403)
    assert _status(app, gio) == "active"
    assert _audit(app) == []


def test_a_status_changed_meanwhile_is_said_not_failed(app, operator_client, gio, client):
    token = _csrf(operator_client)
    for _ in range(2):
        answer = operator_client.post(
            f"/admin/members/{gio.id}/disable",
            data={"csrf_token": token, "reason": "reported abuse"},
            follow_redirects=True,
        )
        assert answer.status_code == 200
    assert "changed meanwhile" in answer.get_data(as_text=True)
    assert len(_audit(app)) == 1


def test_the_api_disables_and_enables_with_a_reason(app, client, gio, admin_headers):
    missing = client.post(f"/admin/api/members/{gio.id}/disable", json={}, headers=admin_headers)
    assert missing.status_code == 422
    assert missing.mimetype == "application/problem+json"
    done = client.post(
        f"/admin/api/members/{gio.id}/disable", json={"reason": "abuse"}, headers=admin_headers
    )
    assert done.status_code == 200
    assert done.json["status"] == "disabled"
    again = client.post(
        f"/admin/api/members/{gio.id}/disable", json={"reason": "abuse"}, headers=admin_headers
    )
    assert again.status_code == 409
    assert again.mimetype == "application/problem+json"
    unknown = client.post(
        "/admin/api/members/nobody/enable", json={"reason": "cleared"}, headers=admin_headers
    )
    assert unknown.status_code == 404
    back = client.post(
        f"/admin/api/members/{gio.id}/enable", json={"reason": "cleared"}, headers=admin_headers
    )
    assert back.json["status"] == "active"


def test_erased_members_cannot_be_disabled_or_enabled(app, client, admin_headers):
    with app.app_context():
        gone = create_member(email="gone@example.org", status="erased")
    for change in ("disable", "enable"):
        refused = client.post(
            f"/admin/api/members/{gone.id}/{change}",
            json={"reason": "x" * 5},
            headers=admin_headers,
        )
        assert refused.status_code == 409


def test_only_operators_may_change_a_members_status(app, client, gio):
    path = f"/admin/api/members/{gio.id}/disable"
    assert client.post(path, json={"reason": "abuse"}).status_code == 401
    with app.app_context():
        reader = bearer_headers("hours:read")
    refused = client.post(path, json={"reason": "abuse"}, headers=reader)
    assert refused.status_code == 403
    log_in(client, gio)
    assert client.post(path, json={"reason": "abuse"}).status_code == 403
    page = client.post(
        f"/admin/members/{gio.id}/disable", data={"csrf_token": _csrf(client), "reason": "abuse"}
    )
    assert page.status_code == 403
    assert _status(app, gio) == "active"

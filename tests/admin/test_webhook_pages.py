"""``/admin/webhooks``: the list with each subscription's delivery health, the detail page,
and the actions (add, disable, enable, rotate, edit) with their refusals and audit rows."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from gateway.admin.models import AdminAction
from gateway.db import db, utcnow
from gateway.sync.models import OutboxItem, SyncAttempt
from gateway.webhooks.subscriptions import signing_secrets
from tests.auth.oidc_helpers import log_in
from tests.factories import create_member
from tests.webhooks.conftest import subscribe


def _csrf(client) -> str:
    with client.session_transaction() as session:
        session["csrf"] = token = "h" * 43
    return token


def _actions(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(AdminAction.action).order_by(AdminAction.created_at)))


@pytest.fixture
def hooked(app):
    """A subscription with a pending, a failing and a dead event, a success and a failure."""
    with app.app_context():
        subscribed = subscribe(events=("member.created", "balance.changed"), description="site")
        now = utcnow()
        rows = []
        for n, (state, attempts) in enumerate((("pending", 0), ("pending", 2), ("dead", 5))):
            item = OutboxItem(
                platform_id=subscribed.platform_id,
                kind="event",
                state=state,
                attempts=attempts,
                payload={"type": "member.created"},
                last_error="HTTP 500 from the receiver" if attempts else None,
                created_at=now - timedelta(minutes=10 - n),
            )
            db.session.add(item)
            db.session.flush()
            rows.append(item.id)
        db.session.add_all(
            [
                SyncAttempt(
                    outbox_id=rows[0],
                    platform_id=subscribed.platform_id,
                    started_at=now - timedelta(minutes=4),
                    outcome="ok",
                ),
                SyncAttempt(
                    outbox_id=rows[2],
                    platform_id=subscribed.platform_id,
                    started_at=now - timedelta(minutes=2),
                    outcome="dead",
                    error="HTTP 500 from the receiver",
                    error_code="http_500",
                ),
            ]
        )
        db.session.commit()
        return subscribed


def test_only_operators_see_the_pages(app, client, hooked):
    assert client.get("/admin/webhooks").status_code == 302
    with app.app_context():
        member = create_member(email="plain@example.org", locale="en")
    log_in(client, member)
    token = _csrf(client)
    for path in ("/admin/webhooks", "/admin/webhooks/new", f"/admin/webhooks/{hooked.id}"):
        assert client.get(path).status_code == 403
    for path in (
        "/admin/webhooks",
        f"/admin/webhooks/{hooked.id}/disable",
        f"/admin/webhooks/{hooked.id}/enable",
        f"/admin/webhooks/{hooked.id}/rotate",
        f"/admin/webhooks/{hooked.id}/update",
    ):
        refused = client.post(
            path,
            data={
                "csrf_token": token,
                "url": "https://evil.example/",
                "events": "member.created",
            },
        )
        assert refused.status_code == 403, path
    assert _actions(app) == ["webhook.add"]


def test_every_write_needs_the_csrf_token(app, operator_client, hooked):
    for path in (
        "/admin/webhooks",
        f"/admin/webhooks/{hooked.id}/disable",
        f"/admin/webhooks/{hooked.id}/enable",
        f"/admin/webhooks/{hooked.id}/rotate",
        f"/admin/webhooks/{hooked.id}/update",
    ):
        refused = operator_client.post(
            path, data={"url": "https://site.example/x", "events": "member.created"}
        )
        assert refused.status_code == 400, path
    assert _actions(app) == ["webhook.add"]


def test_the_list_shows_health_and_hints_never_secrets(app, operator_client, hooked):
    page = operator_client.get("/admin/webhooks")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'href="/admin/webhooks" aria-current="page"' in html
    row = re.search(rf'<tr data-subscription="{hooked.id}".*?</tr>', html, re.S).group(0)
    assert "https://site.example/hooks/gateway" in row
    assert "member.created" in row
    assert "balance.changed" in row
    assert f"…{hooked.secret[-4:]}" in row
    assert hooked.secret not in html
    with app.app_context():
        platform_name = f"webhook-{hooked.id[:12]}"
    for tab in ("pending", "failing", "dead"):
        assert f"/admin/outbox?tab={tab}&amp;platform={platform_name}" in row
    assert "HTTP 500 from the receiver" in row
    assert 'data-label="Last success"' in row
    assert 'data-enabled="yes"' in row


def test_the_list_in_italian_and_empty(app, client):
    with app.app_context():
        operator = create_member(email="op-it@example.org", is_admin=True, locale="it")
    log_in(client, operator)
    html = client.get("/admin/webhooks").get_data(as_text=True)
    assert '<html lang="it"' in html
    assert "Nessun webhook" in html
    assert "Aggiungi un webhook" in html


def test_the_detail_page(app, operator_client, hooked):
    page = operator_client.get(f"/admin/webhooks/{hooked.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert hooked.secret not in html
    assert f"…{hooked.secret[-4:]}" in html
    assert "http_500" in html
    assert 'id="events-table"' in html
    assert "Webhook added" in html  # its history
    assert 'value="member.created" checked' in html
    assert 'value="member.verified">' in html
    assert operator_client.get("/admin/webhooks/nope").status_code == 404


def test_add_shows_the_secret_once(app, operator_client):
    form = operator_client.get("/admin/webhooks/new")
    assert form.status_code == 200
    token = _csrf(operator_client)
    added = operator_client.post(
        "/admin/webhooks",
        data={
            "csrf_token": token,
            "url": "https://site.example/hooks",
            "events": ["member.created", "member.deleted"],
            "description": "the website",
        },
    )
    assert added.status_code == 200
    assert added.headers["Cache-Control"] == "no-store"
    html = added.get_data(as_text=True)
    secret = re.search(r'<textarea id="secret"[^>]*>(whsec_[^<]+)</textarea>', html).group(1)
    assert "it will not be shown again" in html
    # Nothing of it in the session (a readable cookie) or on any later page.
    with operator_client.session_transaction() as session:
        assert secret not in str(dict(session))
    assert secret not in (added.headers.get("Set-Cookie") or "")
    with app.app_context():
        action = db.session.scalars(select(AdminAction)).one()
        assert action.action == "webhook.add"
        assert action.actor.startswith("member:")
        subscription_id = action.target_id
    again = operator_client.get(f"/admin/webhooks/{subscription_id}").get_data(as_text=True)
    assert secret not in again
    assert f"…{secret[-4:]}" in again
    assert secret not in operator_client.get("/admin/webhooks").get_data(as_text=True)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"url": "http://site.example/", "events": "member.created"}, "url", "full https"),
        ({"url": "", "events": "member.created"}, "url", "full https"),
        ({"url": "https://site.example/"}, "events", "Choose at least one event"),
        (
            {"url": "https://site.example/", "events": "member.eaten"},
            "events",
            "Choose at least one event",
        ),
        (
            {"url": "https://site.example/", "events": "member.created", "description": "x" * 201},
            "description",
            "at most 200 characters",
        ),
    ],
)
def test_a_bad_add_redraws_the_form(app, operator_client, data, field, message):
    refused = operator_client.post(
        "/admin/webhooks", data={"csrf_token": _csrf(operator_client), **data}
    )
    assert refused.status_code == 400
    html = refused.get_data(as_text=True)
    assert message in html
    assert 'role="alert"' in html
    assert "aria-invalid" in html
    if data.get("url"):
        assert f'value="{data["url"]}"' in html  # kept, not retyped
    assert "whsec_" not in html
    assert _actions(app) == []


def test_disable_asks_first_then_enable(app, operator_client, hooked):
    confirm = operator_client.get(f"/admin/webhooks/{hooked.id}/disable")
    assert confirm.status_code == 200
    assert "skips 2 events not sent yet" in confirm.get_data(as_text=True)
    token = _csrf(operator_client)
    disabled = operator_client.post(
        f"/admin/webhooks/{hooked.id}/disable", data={"csrf_token": token}
    )
    assert disabled.status_code == 302
    page = operator_client.get(disabled.headers["Location"]).get_data(as_text=True)
    assert "2 unsent events were skipped" in page
    assert "Enable the webhook again" in page
    with app.app_context():
        states = sorted(
            db.session.scalars(
                select(OutboxItem.state).where(OutboxItem.platform_id == hooked.platform_id)
            )
        )
        assert states == ["dead", "skipped", "skipped"]
    again = operator_client.get(f"/admin/webhooks/{hooked.id}/disable", follow_redirects=True)
    assert "disabled already" in again.get_data(as_text=True)
    enabled = operator_client.post(
        f"/admin/webhooks/{hooked.id}/enable", data={"csrf_token": token}, follow_redirects=True
    )
    assert "The skipped ones stay skipped" in enabled.get_data(as_text=True)
    twice = operator_client.post(
        f"/admin/webhooks/{hooked.id}/enable", data={"csrf_token": token}, follow_redirects=True
    )
    assert "enabled already" in twice.get_data(as_text=True)
    assert _actions(app) == ["webhook.add", "webhook.disable", "webhook.enable"]


def test_rotate_shows_the_new_secret_once(app, operator_client, hooked):
    rotated = operator_client.post(
        f"/admin/webhooks/{hooked.id}/rotate", data={"csrf_token": _csrf(operator_client)}
    )
    assert rotated.status_code == 200
    assert rotated.headers["Cache-Control"] == "no-store"
    html = rotated.get_data(as_text=True)
    secret = re.search(r'<textarea id="secret"[^>]*>(whsec_[^<]+)</textarea>', html).group(1)
    assert secret != hooked.secret
    assert "keeps signing beside this one until" in html
    with app.app_context():
        assert [s.secret for s in signing_secrets(hooked.platform_id)] == [secret, hooked.secret]
    assert secret not in operator_client.get(f"/admin/webhooks/{hooked.id}").get_data(as_text=True)
    assert _actions(app) == ["webhook.add", "webhook.rotate_secret"]


def test_edit_events_and_description(app, operator_client, hooked):
    token = _csrf(operator_client)
    refused = operator_client.post(
        f"/admin/webhooks/{hooked.id}/update", data={"csrf_token": token, "description": "x"}
    )
    assert refused.status_code == 400
    html = refused.get_data(as_text=True)
    assert "Choose at least one event" in html
    assert 'value="member.created">' in html  # the operator's unticked boxes stay unticked
    changed = operator_client.post(
        f"/admin/webhooks/{hooked.id}/update",
        data={"csrf_token": token, "events": ["member.deleted"], "description": "the site"},
        follow_redirects=True,
    )
    assert "Webhook changed." in changed.get_data(as_text=True)
    same = operator_client.post(
        f"/admin/webhooks/{hooked.id}/update",
        data={"csrf_token": token, "events": ["member.deleted"], "description": "the site"},
        follow_redirects=True,
    )
    assert "Nothing to change" in same.get_data(as_text=True)
    assert _actions(app) == ["webhook.add", "webhook.update"]


def test_the_audit_log_links_to_the_subscription(operator_client, hooked):
    html = operator_client.get("/admin/audit").get_data(as_text=True)
    assert f'href="/admin/webhooks/{hooked.id}"' in html


def test_reloading_the_secret_page_adds_no_twin(app, operator_client):
    data = {
        "csrf_token": _csrf(operator_client),
        "url": "https://site.example/hooks",
        "events": "member.created",
    }
    first = operator_client.post("/admin/webhooks", data=data)
    assert first.status_code == 200
    again = operator_client.post("/admin/webhooks", data=data)
    assert again.status_code == 302
    page = operator_client.get(again.headers["Location"]).get_data(as_text=True)
    assert "You have just added a webhook with this address" in page
    assert "whsec_" not in page
    assert _actions(app) == ["webhook.add"]

"""A platform goes into failure (the sandbox's fault injection) and back, as operators see it
through the admin API, the admin page in Chromium, and /metrics."""

from __future__ import annotations

import re
import uuid

import pytest
import requests

from gateway.db import db, utcnow
from gateway.devsetup import SANDBOX_CREDENTIALS
from gateway.federation import consent
from gateway.federation.platforms import add_platform
from gateway.jobs import make_worker
from gateway.members.models import Member
from gateway.sync.models import OutboxItem
from gateway_sandbox import SandboxServer, create_sandbox_app
from tests.auth.oidc_helpers import log_in
from tests.factories import bearer_headers, create_member
from tests.live import LiveServer


@pytest.fixture
def sandbox(tmp_path):
    server = SandboxServer(create_sandbox_app({"SANDBOX_DATA_DIR": str(tmp_path / "sb")})).start()
    yield server
    server.stop()


@pytest.fixture
def failing_world(make_app, sandbox):
    """The gateway (one attempt per item) on the sandbox, which fails every call."""
    app = make_app(SYNC_MAX_ATTEMPTS=1)
    with app.app_context():
        platform = add_platform(
            "sandbox", "timerepublik", sandbox.url, credentials=SANDBOX_CREDENTIALS
        )
        member = create_member(email="rita@example.org", email_verified_at=utcnow())
        headers = bearer_headers("admin")
        db.session.commit()
    requests.post(f"{sandbox.url}/_sandbox/faults", json={"error_rate": 1.0}, timeout=5)
    with app.app_context():
        consent.grant(db.session.get(Member, member.id), platform)
        db.session.commit()
    run_jobs(app)
    return app, headers


def run_jobs(app) -> None:
    with app.app_context():
        make_worker(app, fork=False).work(burst=True)


def _status(client, headers) -> dict:
    (row,) = client.get("/admin/api/platforms", headers=headers).json["items"]
    return row


def _page_status(app) -> str:
    with app.app_context():
        operator = create_member(email=f"op-{uuid.uuid4().hex[:6]}@example.org", is_admin=True)
    browser = app.test_client()
    log_in(browser, operator)
    html = browser.get("/admin").get_data(as_text=True)
    return re.search(r'data-platform="sandbox" data-status="([a-z_]+)"', html).group(1)


def test_failure_and_back_through_the_api_and_the_page(failing_world, sandbox):
    app, headers = failing_world
    client = app.test_client()
    assert _page_status(app) == "failing"
    failing = _status(client, headers)
    assert failing["status"] == "failing"
    assert failing["outbox"]["dead"] == 1
    assert failing["failures_last_hour"] == 1
    (dead,) = client.get("/admin/api/outbox?state=dead", headers=headers).json["items"]
    assert dead["last_error"]

    requests.post(f"{sandbox.url}/_sandbox/faults", json={"clear": True}, timeout=5)
    assert client.post(f"/admin/api/outbox/{dead['id']}/retry", headers=headers).status_code == 200
    run_jobs(app)
    back = _status(client, headers)
    # Delivering again, but half the hour's attempts failed: not "in sync" yet.
    assert back["status"] == "recovering"
    assert _page_status(app) == "recovering"
    assert back["outbox"]["dead"] == 0
    assert back["outbox"]["succeeded"] == 1
    assert client.get(f"/admin/api/outbox/{dead['id']}", headers=headers).json["state"] == (
        "succeeded"
    )


@pytest.mark.slow
def test_operator_finds_the_failing_platform_and_retries_in_chromium(
    failing_world, sandbox, chromium, unused_port
):
    app, _ = failing_world
    app.config["GATEWAY_BASE_URL"] = f"http://127.0.0.1:{unused_port}"
    with app.app_context():
        create_member(
            email="op@example.org", password="operator password long", is_admin=True, locale="en"
        )
        (dead_id,) = [i.id for i in db.session.query(OutboxItem).filter_by(state="dead")]
    requests.post(f"{sandbox.url}/_sandbox/faults", json={"clear": True}, timeout=5)
    with LiveServer(app, unused_port) as live:
        page = chromium.new_context(locale="en-GB").new_page()
        page.goto(f"{live.url}/admin")
        page.wait_for_url(re.compile(r".*/login\?next=.*"))
        page.get_by_label("Email").fill("op@example.org")
        page.get_by_label("Password").fill("operator password long")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{live.url}/admin")
        row = page.locator('tr[data-platform="sandbox"]')
        assert row.get_attribute("data-status") == "failing"
        assert "failing" in row.inner_text()
        page.locator(f'#dead-items tr[data-item="{dead_id}"]').get_by_role(
            "button", name="Retry"
        ).click()
        page.get_by_role("status").filter(has_text="Retry queued").wait_for()
    with app.app_context():
        assert db.session.get(OutboxItem, dead_id).state == "pending"
    run_jobs(app)
    with app.app_context():
        assert db.session.get(OutboxItem, dead_id).state == "succeeded"

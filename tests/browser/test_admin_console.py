"""An operator in a real browser: a platform fails, the failing tab shows it, the item page
explains it, the fault clears, a bulk retry recovers it; a reconciliation difference is
investigated from the overview; then every admin page again in the other language.

Every page is checked at both widths by the ``visit`` fixture: scanned with axe-core, no
sideways scrolling, and photographed when ``BROWSER_SCREENSHOTS`` names a folder.
"""

from __future__ import annotations

import re

import pytest
import requests

from gateway.callbacks.models import InboxEvent
from gateway.db import db, utcnow
from gateway.devsetup import SANDBOX_CREDENTIALS
from gateway.federation import consent
from gateway.federation.platforms import add_platform
from gateway.jobs import make_worker
from gateway.members.models import Member
from gateway.sync.models import OutboxItem, ReconciliationDifference, ReconciliationRun
from gateway_sandbox import SandboxServer, create_sandbox_app
from tests.factories import create_member
from tests.live import LiveServer

pytestmark = pytest.mark.slow

PASSWORD = "operator password long"


@pytest.fixture
def sandbox(tmp_path):
    server = SandboxServer(create_sandbox_app({"SANDBOX_DATA_DIR": str(tmp_path / "sb")})).start()
    yield server
    server.stop()


def run_jobs(app) -> None:
    with app.app_context():
        make_worker(app, fork=False).work(burst=True)


@pytest.fixture
def world(make_app, sandbox, unused_port):
    """The gateway on a sandbox that fails every call: a member's registration has failed
    once and waits to retry; a reconciliation left a difference; a callback is parked."""
    app = make_app(SYNC_MAX_ATTEMPTS=5, GATEWAY_BASE_URL=f"http://127.0.0.1:{unused_port}")
    with app.app_context():
        platform = add_platform(
            "sandbox",
            "timerepublik",
            sandbox.url,
            credentials=SANDBOX_CREDENTIALS,
            display_name="Banca del tempo di prova",
        )
        member = create_member(
            email="rita@example.org", display_name="Rita Levi", email_verified_at=utcnow()
        )
        create_member(
            email="op@example.org",
            display_name="Olga Operatrice",
            password=PASSWORD,
            is_admin=True,
            locale="en",
            email_verified_at=utcnow(),
        )
        db.session.commit()
        ids = {"platform": platform.id, "member": member.id}
    requests.post(f"{sandbox.url}/_sandbox/faults", json={"error_rate": 1.0}, timeout=5)
    with app.app_context():
        consent.grant(
            db.session.get(Member, ids["member"]), db.session.get(type(platform), ids["platform"])
        )
        db.session.commit()
    run_jobs(app)
    with app.app_context():
        run = ReconciliationRun(
            platform_id=ids["platform"],
            state="succeeded",
            wallets_checked=12,
            transfers_seen=40,
            imported=1,
            differences=1,
            finished_at=utcnow(),
        )
        db.session.add(run)
        db.session.flush()
        db.session.add(
            ReconciliationDifference(
                run_id=run.id,
                platform_id=ids["platform"],
                member_id=ids["member"],
                remote_wallet_id="w_rita",
                local_minutes=120,
                expected_remote_minutes=120,
                remote_minutes=90,
                difference_minutes=-30,
                explanation="not_mirrored",
            )
        )
        event = InboxEvent(
            platform_id=ids["platform"],
            webhook_id="evt_parked",
            event_type="transfer.completed",
            body='{"transfer": {"id": "t-9", "to_wallet": "w-unknown", "minutes": 30}}',
            headers={"webhook-id": "evt_parked", "webhook-timestamp": "1764500000"},
            state="parked",
            parked_reason="unknown wallet w-unknown",
        )
        db.session.add(event)
        db.session.commit()
        ids |= {"run": run.id, "event": event.id}
        (item,) = db.session.query(OutboxItem).all()
        assert (item.state, item.attempts) == ("pending", 1)
        ids["item"] = item.id
    return app, ids


def log_in_as_operator(page, base: str, path: str = "/admin") -> None:
    """Open ``path`` as the operator op@example.org, through the login page it sends to."""
    page.goto(f"{base}{path}")
    page.wait_for_url(re.compile(r".*/login\?next=.*"))
    page.get_by_label("Email").fill("op@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}{path}")


def test_operator_recovers_a_failing_platform_and_investigates_a_difference(
    world, sandbox, chromium, unused_port, visit
):
    app, ids = world
    with LiveServer(app, unused_port) as live:
        page = chromium.new_context(locale="en-GB").new_page()
        log_in_as_operator(page, live.url)

        # The overview: the platform is not in sync, the failing item is listed, and no
        # worker runs (the test runs its jobs by hand), which the page says first.
        row = page.locator('tr[data-platform="sandbox"]')
        assert row.get_attribute("data-status") in ("failing", "degraded", "circuit_open")
        assert "No worker is running" in page.get_by_role("alert").inner_text()
        assert "Olga Operatrice" in page.locator(".operator").inner_text()
        visit(page, "admin overview")

        # The failing tab shows it, with its count.
        page.get_by_role("link", name="Outbound items").click()
        failing_tab = page.locator('a[data-tab="failing"]')
        assert failing_tab.get_attribute("aria-current") == "page"
        assert "1" in failing_tab.inner_text()
        visit(page, "admin outbox failing tab")

        # The item page explains: member, payload, the attempt with its error.
        page.locator(f'#outbox tr[data-item="{ids["item"]}"] a').first.click()
        page.wait_for_url(re.compile(rf".*/admin/outbox/{ids['item']}$"))
        assert "Rita Levi" in page.locator(".facts").inner_text()
        attempts = page.locator("#attempts")
        assert "failed, will retry" in attempts.inner_text()
        assert page.locator("pre.payload").first.inner_text().strip().startswith("{")
        visit(page, "admin item page")

        # The fault clears; a bulk retry of the failing tab, confirmed with a reason.
        requests.post(f"{sandbox.url}/_sandbox/faults", json={"clear": True}, timeout=5)
        page.goto(f"{live.url}/admin/outbox?tab=failing")
        page.get_by_role("link", name="Retry all of these").click()
        assert "retry 1 items" in page.locator("#bulk-count").inner_text()
        visit(page, "admin bulk confirmation")
        page.get_by_label("Reason (kept in the audit log)").fill("sandbox fault cleared")
        page.get_by_role("button", name="Retry 1 items").click()
        page.get_by_role("status").filter(has_text="1 items queued again").wait_for()
        run_jobs(app)
        with app.app_context():
            assert db.session.get(OutboxItem, ids["item"]).state == "succeeded"
        page.goto(f"{live.url}/admin/outbox?tab=succeeded")
        assert page.locator(f'tr[data-item="{ids["item"]}"]').count() == 1

        # The difference, from the overview: its explanation and what resolves it.
        page.goto(f"{live.url}/admin")
        row = page.locator('tr[data-platform="sandbox"]')
        assert row.get_attribute("data-status") != "ok"
        row.get_by_role("link", name=re.compile("open differences")).click()
        page.wait_for_url(re.compile(rf".*/admin/reconciliation/{ids['run']}$"))
        difference = page.locator("section.difference")
        assert "Local transfers not mirrored." in difference.inner_text()
        visit(page, "admin reconciliation run")
        difference.get_by_role("link", name="Open the member's page").click()
        assert page.locator("h1").inner_text() == "Rita Levi"
        # Registered once the fault cleared: the link and its live remote balance.
        assert "sandbox" in page.locator("#links").inner_text()
        assert "0 min" in page.locator("#links").inner_text()
        visit(page, "admin member page")
        page.go_back()
        page.get_by_label("How it was resolved").fill("checked: transfer done by hand")
        page.get_by_role("button", name="Mark resolved").click()
        page.get_by_role("status").filter(has_text="Difference resolved").wait_for()

        # The remaining pages, in English, then everything again in Italian (the operator's
        # own choice in the header).
        pages = {
            "admin callbacks": "/admin/callbacks",
            "admin callback event": f"/admin/callbacks/{ids['event']}",
            "admin reconciliation runs": "/admin/reconciliation",
            "admin workers": "/admin/work",
            "admin member search": "/admin/members?q=levi",
            "admin audit log": "/admin/audit",
        }
        for label, path in pages.items():
            page.goto(f"{live.url}{path}")
            visit(page, label)
        audit = page.locator("#audit").inner_text()
        assert "Olga Operatrice" in audit
        assert "sandbox fault cleared" in audit

        page.goto(f"{live.url}/admin")
        page.get_by_role("button", name="Italiano").click()
        page.wait_for_url(f"{live.url}/admin")
        assert page.evaluate("document.documentElement.lang") == "it"
        assert "Operatore:" in page.locator(".operator").inner_text()
        visit(page, "admin overview")
        pages |= {
            "admin outbox": "/admin/outbox?tab=succeeded",
            "admin item page": f"/admin/outbox/{ids['item']}",
            "admin reconciliation run": f"/admin/reconciliation/{ids['run']}",
            "admin member page": f"/admin/members/{ids['member']}",
            "admin bulk confirmation": "/admin/outbox/bulk?action=retry&tab=succeeded",
        }
        for label, path in pages.items():
            page.goto(f"{live.url}{path}")
            visit(page, label)
        page.goto(f"{live.url}/admin/outbox/{ids['item']}")
        assert "riuscito" in page.locator("#attempts").inner_text()
        assert "Registrazione iscritto" in page.locator("h1").inner_text()

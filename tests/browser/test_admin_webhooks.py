"""An operator manages webhook subscriptions in a real browser: adds one (a mistake first),
copies its secret from the page that shows it once, reads its health, disables it after the
confirmation and enables it again; then the same pages in Italian.

Every page is checked at 1280 and 375 px by the ``visit`` fixture: scanned with axe-core (no
serious or critical violation), no sideways scrolling, photographed when
``BROWSER_SCREENSHOTS`` names a folder.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from gateway.db import db, utcnow
from gateway.sync.models import OutboxItem, SyncAttempt
from tests.browser.test_admin_console import PASSWORD, log_in_as_operator
from tests.factories import create_member
from tests.live import LiveServer
from tests.webhooks.conftest import subscribe

pytestmark = pytest.mark.slow


@pytest.fixture
def hooked_app(make_app, unused_port):
    """An operator and a subscription whose receiver failed: a failing and a dead event."""
    app = make_app(GATEWAY_BASE_URL=f"http://127.0.0.1:{unused_port}")
    with app.app_context():
        create_member(
            email="op@example.org",
            display_name="Olga Operatrice",
            password=PASSWORD,
            is_admin=True,
            locale="en",
            email_verified_at=utcnow(),
        )
        subscribed = subscribe(
            url="https://www.milanoseilaltro.example/api/hooks/gateway/events-from-the-gateway",
            events=("member.created", "member.deleted", "transaction.posted", "balance.changed"),
            description="Il sito del progetto",
        )
        now = utcnow()
        for n, (state, attempts) in enumerate((("pending", 2), ("dead", 5))):
            item = OutboxItem(
                platform_id=subscribed.platform_id,
                kind="event",
                state=state,
                attempts=attempts,
                payload={"type": "member.created"},
                last_error="HTTP 503 from the receiver",
                created_at=now - timedelta(minutes=5 - n),
            )
            db.session.add(item)
            db.session.flush()
            db.session.add(
                SyncAttempt(
                    outbox_id=item.id,
                    platform_id=subscribed.platform_id,
                    started_at=now - timedelta(minutes=3 - n),
                    outcome="dead" if state == "dead" else "retry",
                    error="HTTP 503 from the receiver",
                    error_code="http_503",
                )
            )
        db.session.commit()
    return app, subscribed


def test_operator_manages_webhooks(hooked_app, chromium, unused_port, visit):
    app, subscribed = hooked_app
    with LiveServer(app, unused_port) as live:
        page = chromium.new_context(locale="en-GB").new_page()
        log_in_as_operator(page, live.url, "/admin/webhooks")

        # The list: the subscription, its health linked to the outbox, hints not secrets.
        row = page.locator(f'tr[data-subscription="{subscribed.id}"]')
        assert "Il sito del progetto" in row.inner_text()
        assert "HTTP 503 from the receiver" in row.inner_text()
        assert f"…{subscribed.secret[-4:]}" in row.inner_text()
        assert subscribed.secret not in page.content()
        visit(page, "admin webhooks")

        # The detail page.
        row.get_by_role("link", name=re.compile("milanoseilaltro")).click()
        page.wait_for_url(f"{live.url}/admin/webhooks/{subscribed.id}")
        assert "http_503" in page.locator("#health").inner_text()
        visit(page, "admin webhook")

        # Adding one: a mistake first, shown beside the field, then the secret once.
        page.goto(f"{live.url}/admin/webhooks")
        page.get_by_role("link", name="Add a webhook").click()
        page.get_by_label("URL").fill("http://site.example/hooks")
        page.get_by_role("button", name="Add and show the secret").click()
        assert "full https address" in page.get_by_role("alert").inner_text()
        assert page.get_by_label("URL").get_attribute("aria-invalid") == "true"
        visit(page, "admin webhook form with errors")
        page.get_by_label("URL").fill("https://site.example/hooks")
        page.get_by_label(re.compile("member.created")).check()
        page.get_by_role("button", name="Add and show the secret").click()
        secret = page.get_by_label(re.compile("Signing secret")).input_value()
        assert secret.startswith("whsec_")
        assert "it will not be shown again" in page.get_by_role("alert").inner_text()
        visit(page, "admin webhook secret")
        page.get_by_role("link", name=re.compile("I copied it")).click()
        assert secret not in page.content()

        # Disabling asks first and says what happens to the unsent events.
        page.goto(f"{live.url}/admin/webhooks/{subscribed.id}")
        page.get_by_role("link", name=re.compile("Disable the webhook")).click()
        assert "skips 1 events" in page.locator("#disable-warning").inner_text()
        visit(page, "admin webhook disable")
        page.get_by_role("button", name="Yes, disable it").click()
        page.get_by_role("status").filter(has_text="Webhook disabled").wait_for()
        page.get_by_role("button", name="Enable the webhook again").click()
        page.get_by_role("status").filter(has_text="stay skipped").wait_for()

        # Everything again in Italian.
        page.goto(f"{live.url}/admin")
        page.get_by_role("button", name="Italiano").click()
        page.wait_for_url(f"{live.url}/admin")
        page.goto(f"{live.url}/admin/webhooks")
        assert page.evaluate("document.documentElement.lang") == "it"
        assert page.locator('nav a[aria-current="page"]').inner_text() == "Webhook"
        visit(page, "admin webhooks")
        for label, path in {
            "admin webhook": f"/admin/webhooks/{subscribed.id}",
            "admin webhook form": "/admin/webhooks/new",
            "admin webhook disable": f"/admin/webhooks/{subscribed.id}/disable",
        }.items():
            page.goto(f"{live.url}{path}")
            visit(page, label)
        page.goto(f"{live.url}/admin/webhooks/{subscribed.id}")
        page.get_by_role("button", name="Crea un nuovo segreto").click()
        assert "non sarà più mostrato" in page.get_by_role("alert").inner_text()
        visit(page, "admin webhook secret")

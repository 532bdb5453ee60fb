"""The pages under their Content-Security-Policy in a real Chromium: every journey still works,
no directive is ever violated, and no other site can frame the gateway.

Chromium applies ``form-action`` to the redirects that follow a form's submission, so these
journeys are the proof that consent, login and account linking may still leave the gateway.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlencode

import pytest

from gateway.db import db, utcnow
from gateway.devsetup import DEMO_CLIENT_ID, ensure_demo_client
from gateway.federation.platforms import add_platform
from gateway_demo_site.app import SCOPE, create_demo_app
from tests.factories import create_client, create_member
from tests.live import LiveServer
from tests.members.helpers import deliver_mail, text_of
from tests.sandbox.conftest import CLIENT_ID, CLIENT_SECRET, start_sandbox

pytestmark = pytest.mark.slow

PASSWORD = "a long enough passphrase"
VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(`${e.violatedDirective} ${e.blockedURI} on ${document.URL}`);
});
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Watch:
    """What a browser context reported: console errors and CSP violation events."""

    console: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        page.on(
            "console",
            lambda m: self.console.append(m.text) if m.type in ("error", "warning") else None,
        )

    def collect(self, page) -> None:
        try:
            self.violations += page.evaluate("window.__violations || []")
        except Exception:  # noqa: BLE001 - a page mid-navigation has nothing to report
            return

    def csp_reports(self) -> list[str]:
        words = ("Content Security Policy", "Refused to")
        return [m for m in self.console if any(w in m for w in words)] + self.violations


@pytest.fixture
def world(make_app, unused_port, tmp_path) -> Iterator[dict]:
    """The sandbox, the gateway, a first-party and a third-party demo site, on loopback."""
    sandbox = start_sandbox(tmp_path / "sandbox")
    app = make_app(GATEWAY_BASE_URL=f"http://127.0.0.1:{unused_port}")
    first_url = f"http://127.0.0.1:{_free_port()}"
    third_url = f"http://127.0.0.1:{_free_port()}"
    with app.app_context():
        add_platform(
            "sandbox",
            "timerepublik",
            sandbox.url,
            credentials={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
            options={"clearing_wallet_id": "w_clearing"},
            display_name="Test timebank",
        )
        db.session.commit()
        neighbours, neighbours_secret = create_client(
            scope=SCOPE,
            client_id="neighbours",
            name="Neighbours",
            redirect_uris=[f"{third_url}/callback"],
            grant_types=["authorization_code", "refresh_token"],
        )
        admin = create_member(
            email="ops@example.org",
            password=PASSWORD,
            is_admin=True,
            locale="en",
            email_verified_at=utcnow(),
        )
    secret = ensure_demo_client(app, first_url)
    with LiveServer(app, unused_port) as gateway:
        first = create_demo_app(gateway.url, DEMO_CLIENT_ID, secret, first_url)
        third = create_demo_app(gateway.url, neighbours.client_id, neighbours_secret, third_url)
        with (
            LiveServer(first, int(first_url.rsplit(":", 1)[1])),
            LiveServer(third, int(third_url.rsplit(":", 1)[1])),
        ):
            yield {
                "app": app,
                "gateway": gateway.url,
                "first": first_url,
                "third": third_url,
                "sandbox": sandbox,
                "admin": admin,
            }
    sandbox.server.stop()


def _page(chromium, watch: Watch):
    context = chromium.new_context(locale="en-GB")
    context.add_init_script(VIOLATIONS)
    page = context.new_page()
    watch.attach(page)
    page.on(
        "framenavigated", lambda frame: watch.collect(page) if frame == page.main_frame else None
    )
    return context, page


def _log_in(page, email: str) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_signup_consent_and_login_to_a_third_party_site(world, chromium):
    watch = Watch()
    context, page = _page(chromium, watch)
    page.goto(world["third"])
    page.get_by_role("link", name="Sign up").click()
    page.wait_for_url(re.compile(r".*/signup\?.*"))
    page.get_by_label("Email").fill("lia@example.org")
    page.get_by_label("Display name").fill("Lia")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Gardening").check()
    page.get_by_role("button", name="Create the account").click()
    page.get_by_role("heading", name="Check your email").wait_for()

    (message,) = deliver_mail(world["app"])
    page.goto(re.search(r"http://\S+/verify-email\S+", text_of(message)).group(0))
    page.wait_for_url(re.compile(r".*/account/timebanks\?next=.*"))
    page.get_by_role("button", name="Sign me up to Test timebank").click()
    page.get_by_role("status").filter(has_text="We are signing you up").wait_for()
    page.get_by_role("main").get_by_role("link", name="Back to Neighbours").click()

    # Consent to a third party: its form's answer redirects to the site's own origin.
    page.get_by_role("heading", name="Neighbours asks for access").wait_for()
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{world['third']}/")
    assert "Hello Lia" in page.inner_text("#welcome")
    context.close()

    # A new browser: the login form's answer leads through /oauth/authorize to the site.
    context, page = _page(chromium, watch)
    page.goto(world["third"])
    page.get_by_role("link", name="Log in").click()
    page.wait_for_url(re.compile(r".*/login\?.*"))
    _log_in(page, "lia@example.org")
    page.wait_for_url(f"{world['third']}/")
    assert "Hello Lia" in page.inner_text("#welcome")
    watch.collect(page)
    context.close()
    assert watch.csp_reports() == []


def test_account_admin_docs_and_linking_a_timebank_account(world, chromium):
    own = world["sandbox"].control("POST", "seed")["members"][0]
    watch = Watch()
    context, page = _page(chromium, watch)
    page.goto(f"{world['gateway']}/login")
    _log_in(page, "ops@example.org")
    page.wait_for_url(f"{world['gateway']}/account")
    page.get_by_role("heading", name="Your account").wait_for()
    # The account page's stylesheet applies (it is served by the gateway itself).
    assert page.evaluate("getComputedStyle(document.body).margin") == "0px"

    page.goto(f"{world['gateway']}/admin")
    page.locator("svg.chart").wait_for()
    page.goto(f"{world['gateway']}/docs")
    assert page.evaluate("getComputedStyle(document.querySelector('th')).borderTopStyle") == (
        "solid"
    )

    # Linking: the form's answer redirects to the timebank's own authorization page.
    page.goto(f"{world['gateway']}/account/timebanks")
    page.get_by_role("button", name="I already have an account on Test timebank").click()
    page.wait_for_url(re.compile(re.escape(world["sandbox"].url) + r"/oauth/authorize\?.*"))
    page.get_by_label("Your e-mail on the sandbox timebank").fill(own["email"])
    page.get_by_role("button", name="Allow").click()
    page.get_by_role("status").filter(has_text="is linked").wait_for()
    watch.collect(page)
    context.close()
    assert watch.csp_reports() == []


@pytest.mark.parametrize("path", ["/login", "/signup", "/oauth/authorize?client_id=neighbours"])
def test_another_site_cannot_frame_the_gateway(world, chromium, path):
    watch = Watch()
    context, page = _page(chromium, watch)
    page.route(
        "http://attacker.test/*",
        lambda route: route.fulfill(content_type="text/html", body=_ATTACK),
    )
    page.route(
        "http://friend.test/",
        lambda route: route.fulfill(content_type="text/html", body="<form></form>"),
    )
    page.goto("http://attacker.test/?" + urlencode({"target": f"{world['gateway']}{path}"}))
    page.wait_for_load_state("load")
    urls = {frame.name: frame.url for frame in page.frames if frame != page.main_frame}
    # A page that allows framing shows in its frame; the gateway's is an error page instead.
    assert urls == {"friend": "http://friend.test/", "gateway": "chrome-error://chromewebdata/"}
    assert page.frame("friend").locator("form").count() == 1
    assert page.frame("gateway").locator("form").count() == 0
    context.close()


_ATTACK = """<!doctype html><title>Win a prize</title>
<iframe name="friend" src="http://friend.test/"></iframe>
<iframe name="gateway"></iframe>
<script>
document.querySelector("iframe[name=gateway]").src =
  new URLSearchParams(location.search).get("target");
</script>"""

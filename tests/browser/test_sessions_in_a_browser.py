"""Logins as a browser sees them: logout ends copies of the cookie, a request for a fresh
login from another site logs nobody out, and the unconfirmed-address banner is usable."""

from __future__ import annotations

import re

import pytest

from gateway.db import utcnow
from tests.factories import create_client, create_member
from tests.live import LiveServer

pytestmark = pytest.mark.slow

PASSWORD = "a long browser password"
RP_CALLBACK = "https://rp.example/callback"


@pytest.fixture
def gateway(make_app, unused_port):
    app = make_app(GATEWAY_BASE_URL=f"http://127.0.0.1:{unused_port}")
    with LiveServer(app, unused_port) as server:
        yield {"app": app, "url": server.url}


def _member(app, **fields):
    with app.app_context():
        return create_member(password=PASSWORD, locale="en", **fields)


def _log_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/account")


def test_a_copied_cookie_opens_nothing_after_logout(gateway, chromium):
    base = gateway["url"]
    _member(gateway["app"], email="eva@example.org", email_verified_at=utcnow())
    owner = chromium.new_context(locale="en-GB")
    page = owner.new_page()
    _log_in(page, base, "eva@example.org")

    thief = chromium.new_context(locale="en-GB")
    thief.add_cookies(owner.cookies())
    stolen = thief.new_page()
    stolen.goto(f"{base}/account")
    assert stolen.get_by_role("heading", name="Your account").is_visible()

    page.get_by_role("button", name="Log out", exact=True).click()
    page.wait_for_url(re.compile(r".*/login$"))
    stolen.goto(f"{base}/account")
    assert re.search(r"/login\?next=", stolen.url)
    assert stolen.get_by_role("heading", name="Log in").is_visible()
    owner.close()
    thief.close()


def test_prompt_login_from_another_site_logs_nobody_out(gateway, chromium):
    app, base = gateway["app"], gateway["url"]
    _member(app, email="ivo@example.org", email_verified_at=utcnow())
    with app.app_context():
        rp, _ = create_client(redirect_uris=[RP_CALLBACK], kind="first_party")
    context = chromium.new_context(locale="en-GB")
    # The relying party's own site is not reachable from the tests: answer for it.
    context.route(f"{RP_CALLBACK}**", lambda route: route.fulfill(body="back at the site"))
    page = context.new_page()
    _log_in(page, base, "ivo@example.org")

    authorize = (
        f"{base}/oauth/authorize?response_type=code&client_id={rp.client_id}"
        f"&redirect_uri={RP_CALLBACK}&scope=openid&state=s1&prompt=login"
        "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
    )
    page.goto(authorize)
    page.wait_for_url(re.compile(r".*/login\?"))
    assert page.get_by_text("You are logged in as ivo@example.org").is_visible()
    # The member walks away from the login form: still logged in.
    page.goto(f"{base}/account")
    assert page.get_by_role("heading", name="Your account").is_visible()

    # This time the member logs in again, and the site gets its answer.
    page.goto(authorize)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(re.escape(RP_CALLBACK) + r"\?.*code=.*"))
    assert "state=s1" in page.url
    context.close()


def test_the_banner_is_a_region_whose_button_shows_keyboard_focus(gateway, chromium):
    base = gateway["url"]
    _member(gateway["app"], email="zoe@example.org")
    page = chromium.new_context(locale="en-GB").new_page()
    _log_in(page, base, "zoe@example.org")
    banner = page.get_by_role("region", name="Confirm your email address")
    assert banner.is_visible()
    button = banner.get_by_role("button", name="Send the confirmation link again")
    # Past the skip link and the header's controls, the banner's button.
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == button.inner_text():
            break
    assert page.evaluate("document.activeElement.textContent") == button.inner_text()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")
    page.keyboard.press("Enter")
    page.get_by_role("status").filter(has_text="We sent a new link").wait_for()
    assert page.url == f"{base}/account"

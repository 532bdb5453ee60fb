"""Logins as a browser sees them: logout ends copies of the cookie."""

from __future__ import annotations

import re

import pytest

from gateway.db import utcnow
from tests.factories import create_member
from tests.live import LiveServer

pytestmark = pytest.mark.slow

PASSWORD = "a long browser password"


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

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r".*/login$"))
    stolen.goto(f"{base}/account")
    assert re.search(r"/login\?next=", stolen.url)
    assert stolen.get_by_role("heading", name="Log in").is_visible()
    owner.close()
    thief.close()

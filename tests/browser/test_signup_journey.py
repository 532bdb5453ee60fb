"""A newcomer's whole journey in a real browser: from the demo site to signup, the emailed
link, consent to a timebank, and back to the demo site logged in."""

from __future__ import annotations

import re
import socket

import pytest
from sqlalchemy import select

from gateway.db import db
from gateway.demo_site.app import create_demo_app
from gateway.devsetup import DEMO_CLIENT_ID, SANDBOX_CREDENTIALS, ensure_demo_client
from gateway.federation.models import Consent, PlatformLink
from gateway.federation.platforms import add_platform
from gateway.members.models import Member
from gateway.sandbox import SandboxServer, create_sandbox_app
from tests.live import LiveServer
from tests.members.helpers import deliver_mail

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def world(make_app, unused_port, tmp_path):
    """The sandbox timebank, the gateway and the demo site, each on its own loopback port."""
    sandbox = SandboxServer(create_sandbox_app({"SANDBOX_DATA_DIR": str(tmp_path / "sb")})).start()
    app = make_app(GATEWAY_BASE_URL=f"http://127.0.0.1:{unused_port}")
    with app.app_context():
        add_platform(
            "sandbox",
            "timerepublik",
            sandbox.url,
            credentials=SANDBOX_CREDENTIALS,
            options={"clearing_wallet_id": "w_clearing"},
            display_name="Banca del tempo di prova",
        )
        db.session.commit()
    demo_url = f"http://127.0.0.1:{_free_port()}"
    secret = ensure_demo_client(app, demo_url)
    with LiveServer(app, unused_port) as gateway:
        demo = create_demo_app(gateway.url, DEMO_CLIENT_ID, secret, demo_url)
        with LiveServer(demo, int(demo_url.rsplit(":", 1)[1])):
            yield {"app": app, "gateway": gateway.url, "demo": demo_url}
    sandbox.stop()


def test_signup_consent_and_back_to_the_demo_site(world, chromium):
    app = world["app"]
    context = chromium.new_context(locale="it-IT")
    page = context.new_page()
    page.goto(world["demo"])
    page.get_by_role("link", name="Iscriviti").click()

    page.wait_for_url(re.compile(r".*/signup\?.*"))
    page.get_by_label("Email").fill("anna@example.org")
    page.get_by_label("Nome da mostrare").fill("Anna")
    page.get_by_label("Password").fill("una frase lunga abbastanza")
    page.get_by_label("Babysitting").check()
    page.get_by_label("Municipio", exact=True).select_option("6")
    page.get_by_role("button", name="Crea l'account").click()
    page.get_by_role("heading", name="Controlla la tua email").wait_for()

    (message,) = deliver_mail(app)
    link = re.search(r"http://\S+/verify-email\S+", message.get_content()).group(0)
    page.goto(link)

    # Signing up through the gateway offers the timebanks before going back.
    page.wait_for_url(re.compile(r".*/account/timebanks\?next=.*"))
    page.get_by_text("il tuo indirizzo email").wait_for()
    page.get_by_role("button", name="Iscrivimi a Banca del tempo di prova").click()
    page.get_by_role("status").filter(has_text="Ti stiamo iscrivendo").wait_for()
    page.get_by_role("link", name="Continua").click()

    page.wait_for_url(f"{world['demo']}/")
    assert "Ciao Anna" in page.inner_text("#welcome")
    claims = page.inner_text("#claims")
    assert "anna@example.org" in claims
    assert "email_verified" in claims
    with app.app_context():
        member = db.session.scalar(select(Member).where(Member.email == "anna@example.org"))
        assert member.email_verified_at is not None
        assert db.session.scalar(select(Consent).where(Consent.member_id == member.id))
    # The worker delivers the registration to the timebank.
    deliver_mail(app)
    with app.app_context():
        link_row = db.session.scalar(
            select(PlatformLink).where(PlatformLink.member_id == member.id)
        )
        assert link_row.state == "active"
        assert link_row.remote_wallet_id
    context.close()


def test_login_form_works_with_the_keyboard_alone(world, chromium):
    app = world["app"]
    with app.app_context():
        from tests.factories import create_member

        create_member(email="kb@example.org", password="keyboard only password", locale="en")
    page = chromium.new_context(locale="en-GB").new_page()
    page.goto(f"{world['gateway']}/login")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "email"
    page.keyboard.type("kb@example.org")
    page.keyboard.press("Tab")
    page.keyboard.type("keyboard only password")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{world['gateway']}/account")
    assert page.get_by_role("heading", name="Your account").is_visible()

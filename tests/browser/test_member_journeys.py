"""A member's journeys in a real browser, in Italian and English, from the demo site to the
gateway and back: signup, the emailed link (in English opened in another browser, as from a
mail program), a timebank, back on the site; logging out, from the site and from the gateway's
header, back on the site; a forgotten password reset from the login page, back on the site.
Every page on the way is scanned with axe-core at a desktop and a phone width (``visit``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.db import db
from gateway.federation.models import Consent, PlatformLink
from gateway.members.models import Member
from tests.factories import create_member
from tests.members.helpers import deliver_mail, text_of

pytestmark = pytest.mark.slow

PASSWORD = "una frase lunga abbastanza"
NEW_PASSWORD = "another sentence long enough"

WORDS = {
    "it": {
        "browser": "it-IT",
        "signup": "Iscriviti",
        "name": "Nome da mostrare",
        "create": "Crea l'account",
        "sent": "Controlla la tua email",
        "connect": "Iscrivimi a Banca del tempo di prova",
        "connected": "Ti stiamo iscrivendo",
        "back": "Torna a Demo site",
        "hello": "Ciao",
        "even": "Saldo ore: sei in pari.",
        "logout": "Esci",
        "logged_out": "Sei uscito.",
        "login": "Accedi",
        "forgot": "Hai dimenticato la password?",
        "send_link": "Mandami il link",
        "new_password": "Scegli una nuova password",
        "confirm": "Ripeti la password",
        "save": "Salva la password",
        "fix": "Controlla questi campi",
        "changed": "Password cambiata",
        "restart_title": "Riprendiamo l'accesso",
        "restart": "Accedi di nuovo",
    },
    "en": {
        "browser": "en-GB",
        "signup": "Sign up",
        "name": "Display name",
        "create": "Create the account",
        "sent": "Check your email",
        "connect": "Sign me up to Banca del tempo di prova",
        "connected": "We are signing you up",
        "back": "Back to Demo site",
        "hello": "Hello",
        "even": "Hour balance: you are even.",
        "logout": "Log out",
        "logged_out": "You are logged out.",
        "login": "Log in",
        "forgot": "Forgot your password?",
        "send_link": "Send me the link",
        "new_password": "Choose a new password",
        "confirm": "Repeat the password",
        "save": "Save the password",
        "fix": "Please check these fields",
        "changed": "Password changed",
        "restart_title": "Let's sign you in again",
        "restart": "Sign in again",
    },
}


def contrast_with_white(rgb: str) -> float:
    """The WCAG contrast ratio of a CSS ``rgb(r, g, b)`` colour against white."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(v) for v in re.findall(r"\d+", rgb)[:3])
    luminance = 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    return 1.05 / (luminance + 0.05)


def latest_mail(app, to: str):
    """Run the queued jobs; the newest message to ``to`` and the raw file it was written to."""
    messages = [m for m in deliver_mail(app) if m["To"] == to]
    assert messages, f"no mail to {to}"
    folder = Path(app.config["GATEWAY_DATA_DIR"]) / "mail"
    newest = max(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    return messages[-1], newest.read_bytes()


def link_to(message, raw: bytes, path: str) -> str:
    """The link to ``path`` in ``message``, checked to be one unbroken line of the file."""
    link = re.search(rf"http://\S+{re.escape(path)}\S*", text_of(message)).group(0)
    assert link.encode() in raw, "the link is wrapped or encoded in the mail file"
    return link


@pytest.mark.parametrize("lang", ["it", "en"])
def test_signup_timebank_logout_and_reset_each_end_back_on_the_site(
    journey_world, chromium, visit, lang
):
    world, w = journey_world, WORDS[lang]
    email = f"anna-{lang}@example.org"
    context = chromium.new_context(locale=w["browser"])
    page = context.new_page()

    # Signup, from the demo site.
    page.goto(world.demo)
    visit(page, "demo site")
    page.get_by_role("link", name=w["signup"], exact=True).click()
    page.wait_for_url(re.compile(r".*/signup\?.*"))
    visit(page, "signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label(w["name"]).fill("Anna")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Municipio", exact=True).select_option("6")
    page.get_by_role("button", name=w["create"]).click()
    page.get_by_role("heading", name=w["sent"]).wait_for()
    visit(page, "signup sent")

    # The confirmation link, read from the mail; signing up offers the timebanks first. In
    # English the member opens it in another browser (the mail program's), where the demo
    # site never started a sign-in.
    message, raw = latest_mail(world.app, email)
    elsewhere = lang == "en"
    if elsewhere:
        context.close()
        context = chromium.new_context(locale=w["browser"])
        page = context.new_page()
    page.goto(link_to(message, raw, "/verify-email"))
    page.wait_for_url(re.compile(r".*/account/timebanks\?next=.*"))
    visit(page, "timebanks offered")
    page.get_by_role("button", name=w["connect"]).click()
    page.get_by_role("status").filter(has_text=w["connected"]).wait_for()
    visit(page, "timebank connected")
    # The way back is the page's main action, after every timebank.
    back = page.get_by_role("link", name=w["back"])
    assert "button" in back.get_attribute("class")
    back.click()
    if elsewhere:
        # The demo site says what happened and starts again: the gateway login completes it.
        page.get_by_role("heading", name=w["restart_title"]).wait_for()
        visit(page, "demo site starts the sign-in again")
        page.get_by_role("link", name=w["restart"]).click()
    page.wait_for_url(f"{world.demo}/")
    assert f"{w['hello']} Anna" in page.inner_text("#welcome")
    assert page.inner_text("#hours") == w["even"]
    visit(page, "demo site logged in")
    with world.app.app_context():
        member = db.session.scalar(select(Member).where(Member.email == email))
        assert member.is_verified
        assert member.locale == lang
        assert db.session.scalar(select(Consent).where(Consent.member_id == member.id))
    deliver_mail(world.app)  # the worker registers the member at the timebank
    with world.app.app_context():
        link = db.session.scalar(select(PlatformLink).where(PlatformLink.member_id == member.id))
        assert link.state == "active"

    # Logging out on the site logs out of the gateway and comes back to the site.
    page.get_by_role("button", name=w["logout"]).click()
    page.wait_for_url(f"{world.demo}/")
    page.get_by_role("status").filter(has_text=w["logged_out"]).wait_for()
    visit(page, "demo site logged out")
    page.goto(f"{world.gateway}/account")
    page.wait_for_url(re.compile(r".*/login\?next=%2Faccount$"))

    # Logging out from the gateway's header also leads back to the site the member came from.
    page.goto(world.demo)
    page.get_by_role("link", name=w["login"], exact=True).click()
    page.wait_for_url(re.compile(r".*/login\?.*"))
    visit(page, "login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=w["login"]).click()
    page.wait_for_url(f"{world.demo}/")
    page.goto(f"{world.gateway}/account")
    visit(page, "account")
    brand = page.locator("header .brand")
    assert brand.inner_text().endswith("Demo site")
    assert brand.get_attribute("href") == f"{world.demo}/"
    page.get_by_role("navigation").get_by_role("button", name=w["logout"]).click()
    page.wait_for_url(f"{world.demo}/")
    page.goto(f"{world.gateway}/account")
    page.wait_for_url(re.compile(r".*/login\?next=%2Faccount$"))

    # A forgotten password, from the login page the site sent the member to. (The site kept
    # its own session: the member leaves it with its own button first.)
    page.goto(world.demo)
    page.get_by_role("button", name=w["logout"]).click()
    page.get_by_role("status").filter(has_text=w["logged_out"]).wait_for()
    page.get_by_role("link", name=w["login"], exact=True).click()
    page.wait_for_url(re.compile(r".*/login\?.*"))
    page.get_by_role("link", name=w["forgot"]).click()
    page.wait_for_url(re.compile(r".*/password/forgot\?next=.*"))
    visit(page, "forgot password")
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name=w["send_link"]).click()
    page.get_by_role("status").wait_for()
    visit(page, "reset link sent")
    message, raw = latest_mail(world.app, email)
    page.goto(link_to(message, raw, "/password/reset"))
    page.get_by_role("heading", name=w["new_password"]).wait_for()
    visit(page, "new password")
    # A mistake first: the summary of errors takes the focus.
    page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label(w["confirm"]).fill(NEW_PASSWORD + "!")
    page.get_by_role("button", name=w["save"]).click()
    page.get_by_role("heading", name=w["fix"]).wait_for()
    assert page.evaluate("document.activeElement.id") == "error-summary"
    visit(page, "new password with an error")
    page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label(w["confirm"]).fill(NEW_PASSWORD)
    page.get_by_role("button", name=w["save"]).click()
    page.get_by_role("heading", name=w["changed"]).wait_for()
    visit(page, "password changed")
    page.get_by_role("link", name=w["back"]).click()
    page.wait_for_url(f"{world.demo}/")
    assert f"{w['hello']} Anna" in page.inner_text("#welcome")
    context.close()


def test_login_form_works_with_the_keyboard_alone(journey_world, chromium):
    world = journey_world
    with world.app.app_context():
        create_member(email="kb@example.org", password="keyboard only password", locale="en")
    page = chromium.new_context(locale="en-GB").new_page()
    page.goto(f"{world.gateway}/login")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "email"
    # The focus ring stands out from the white page by 3:1 or more (WCAG 2.2, 1.4.11).
    ring = page.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, s.outlineWidth, s.outlineColor]; })()"
    )
    assert ring[0] == "solid"
    assert float(ring[1].removesuffix("px")) >= 2
    assert contrast_with_white(ring[2]) >= 3
    page.keyboard.type("kb@example.org")
    page.keyboard.press("Tab")
    page.keyboard.type("keyboard only password")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{world.gateway}/account")
    assert page.get_by_role("heading", name="Your account").is_visible()

"""Every other page a member meets, in Italian and English, scanned with axe-core at a desktop
and a phone width: the home page, forms with errors, the account pages, consent to a
third-party app (and its refusal before the address is confirmed), logout confirmations, a
broken mail link, and the error pages (404, the expired form, too many attempts)."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from gateway.auth.models import ClientConsent
from gateway.db import db, utcnow
from gateway.members.models import Member
from gateway.members.tokens import verification_token
from tests.auth.oidc_helpers import pkce_pair
from tests.factories import create_client, create_member

pytestmark = pytest.mark.slow

PASSWORD = "a long enough passphrase"
RP = "https://rp.example/callback"
BROWSER = {"it": "it-IT", "en": "en-GB"}
WORDS = {
    "it": {
        "create": "Crea l'account",
        "fix": "Controlla questi campi",
        "login": "Accedi",
        "many": "Troppi tentativi",
        "reset": "Hai dimenticato la password? Scegline una nuova",
        "forgot": "Password dimenticata",
        "confirm_logout": "Esci",
        "logged_out": "Sei uscito",
        "english": "English",
    },
    "en": {
        "create": "Create the account",
        "fix": "Please check these fields",
        "login": "Log in",
        "many": "Too many attempts",
        "reset": "Forgot your password? Choose a new one",
        "forgot": "Forgotten password",
        "confirm_logout": "Log out",
        "logged_out": "You are logged out",
        "english": "English",
    },
}


def _authorize(base: str, client_id: str) -> str:
    _, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": RP,
        "scope": "openid profile hours:read",
        "state": "s1",
        "nonce": "n1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return f"{base}/oauth/authorize?{urlencode(params)}"


def _log_in(page, base: str, email: str, words: dict) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=words["login"]).click()
    page.wait_for_url(f"{base}/account")


@pytest.mark.parametrize("lang", ["it", "en"])
def test_every_members_page_is_accessible(journey_world, chromium, visit, lang):
    world, w = journey_world, WORDS[lang]
    base = world.gateway
    with world.app.app_context():
        neighbours, _ = create_client(
            client_id=f"neighbours-{lang}", name="Quartiere Aperto", redirect_uris=[RP]
        )
        member = create_member(
            email=f"pia-{lang}@example.org",
            password=PASSWORD,
            locale=lang,
            email_verified_at=utcnow(),
        )
        db.session.add(
            ClientConsent(member_id=member.id, client_id=neighbours.client_id, scope="openid")
        )
        db.session.commit()
        create_member(email=f"ugo-{lang}@example.org", password=PASSWORD, locale=lang)
        confirmed_again = verification_token(member)
    context = chromium.new_context(locale=BROWSER[lang])
    page = context.new_page()

    page.goto(base)
    visit(page, "home")
    page.goto(f"{base}/signup")
    page.get_by_role("button", name=w["create"]).click()
    page.get_by_role("heading", name=w["fix"]).wait_for()
    assert page.evaluate("document.activeElement.id") == "error-summary"
    visit(page, "signup with errors")

    response = page.goto(f"{base}/no/such/page")
    assert response.status == 404
    assert response.headers["content-type"].startswith("text/html")
    visit(page, "page not found")
    page.goto(f"{base}/verify-email?token=cut-when-copied")
    visit(page, "broken link")

    # A form whose session was lost on the way (the cookie expired, say).
    page.goto(f"{base}/login")
    context.clear_cookies()
    page.get_by_label("Email").fill(f"pia-{lang}@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=w["login"]).click()
    page.get_by_role("alert").wait_for()
    visit(page, "expired form")
    page.get_by_role("main").get_by_role("link").first.click()
    page.wait_for_url(f"{base}/login")

    # Too many attempts (three per account here): the page offers a new password instead.
    for attempt in range(4):
        page.get_by_label("Email").fill(f"ugo-{lang}@example.org")
        page.get_by_label("Password").fill("not the password at all")
        page.get_by_role("button", name=w["login"]).click()
        page.get_by_role("heading", name=w["fix"] if attempt < 3 else w["many"]).wait_for()
    visit(page, "too many attempts")
    page.get_by_role("link", name=w["reset"]).click()
    page.get_by_role("heading", name=w["forgot"]).wait_for()
    assert page.get_by_label("Email").input_value() == f"ugo-{lang}@example.org"

    _log_in(page, base, f"pia-{lang}@example.org", w)
    for path, label in (
        ("/account/timebanks", "timebanks"),
        ("/account/apps", "apps with access"),
        ("/logout", "logout question"),
        (f"/verify-email?token={confirmed_again}", "address confirmed"),
    ):
        page.goto(f"{base}{path}")
        visit(page, label)
    page.goto(_authorize(base, neighbours.client_id) + "&prompt=consent")
    # A member who never chose about timebanks is offered them first, then goes on.
    page.wait_for_url(re.compile(r".*/account/timebanks\?next=.*"))
    page.get_by_role("main").get_by_role("link", name=re.compile("Quartiere Aperto")).click()
    page.get_by_role("heading", name=re.compile("Quartiere Aperto")).wait_for()
    visit(page, "consent")
    page.goto(f"{base}/oauth/logout")
    visit(page, "logout asked by a site")
    page.get_by_role("main").get_by_role("button", name=w["confirm_logout"]).click()
    page.get_by_role("heading", name=w["logged_out"]).wait_for()
    visit(page, "logged out")
    context.close()


@pytest.mark.parametrize("lang", ["it", "en"])
def test_a_third_party_app_waits_for_a_confirmed_address(journey_world, chromium, visit, lang):
    world, w = journey_world, WORDS[lang]
    with world.app.app_context():
        create_client(client_id=f"bottega-{lang}", name="Bottega", redirect_uris=[RP])
        create_member(email=f"eva-{lang}@example.org", password=PASSWORD, locale=lang)
    page = chromium.new_context(locale=BROWSER[lang]).new_page()
    _log_in(page, world.gateway, f"eva-{lang}@example.org", w)
    response = page.goto(_authorize(world.gateway, f"bottega-{lang}"))
    assert response.status == 403
    visit(page, "app waits for confirmation")
    page.context.close()


def test_the_language_switch_is_remembered_and_saved_on_the_member(journey_world, chromium):
    world = journey_world
    with world.app.app_context():
        member = create_member(
            email="lino@example.org", password=PASSWORD, locale="it", email_verified_at=utcnow()
        )
    page = chromium.new_context(locale="it-IT").new_page()
    _log_in(page, world.gateway, "lino@example.org", WORDS["it"])
    page.get_by_role("button", name="English").click()
    page.wait_for_url(f"{world.gateway}/account")
    assert page.get_by_role("heading", name="Your account").is_visible()
    page.goto(f"{world.gateway}/account/timebanks")
    assert page.get_by_role("heading", name="Connected timebanks").is_visible()
    with world.app.app_context():
        assert db.session.scalar(select(Member.locale).where(Member.id == member.id)) == "en"
    page.context.close()


@pytest.mark.parametrize("lang", ["it", "en"])
def test_logging_out_of_every_device_from_the_account_page(journey_world, chromium, visit, lang):
    world, w = journey_world, WORDS[lang]
    with world.app.app_context():
        create_member(
            email=f"leda-{lang}@example.org",
            password=PASSWORD,
            locale=lang,
            email_verified_at=utcnow(),
        )
    phone = chromium.new_context(locale=lang).new_page()
    _log_in(phone, world.gateway, f"leda-{lang}@example.org", w)
    laptop = chromium.new_context(locale=lang).new_page()
    _log_in(laptop, world.gateway, f"leda-{lang}@example.org", w)
    visit(laptop, "account with two logins")
    button = {"it": "Esci da tutti i dispositivi", "en": "Log out of every device"}[lang]
    laptop.get_by_role("button", name=button).click()
    laptop.wait_for_url(f"{world.gateway}/login")
    assert laptop.get_by_role("status").is_visible()
    phone.goto(f"{world.gateway}/account")
    assert phone.url.startswith(f"{world.gateway}/login?")
    phone.context.close()
    laptop.context.close()

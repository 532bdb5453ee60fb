"""A member's own pages in a real browser, in both languages, on a desktop and on a phone:
my hours, then my data (profile, the copy, the download), then deleting the account.

Every page is checked at both widths by the ``visit`` fixture: scanned with axe-core, no
sideways scrolling, and photographed when ``BROWSER_SCREENSHOTS`` names a folder.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.auth.tokens import issue_token
from gateway.db import db, utcnow
from gateway.federation.consent import CONSENT_TEXT_VERSION, SHARED_FIELDS
from gateway.federation.models import Consent, Platform, PlatformLink
from gateway.ledger import services as ledger
from gateway.members.models import Member
from gateway.sync.models import (
    OutboxItem,
    ReconciliationDifference,
    ReconciliationRun,
    RemoteBalance,
)
from tests.factories import create_client, create_member
from tests.live import LiveServer

pytestmark = pytest.mark.slow

PASSWORD = "a long password for the browser"
TEXTS = {
    "it": {
        "hours": "Le mie ore",
        "older": "Movimenti precedenti",
        "data": "I miei dati",
        "edit": "Modifica il profilo",
        "skill": "Piccole riparazioni",
        "save": "Salva",
        "saved": "Profilo salvato.",
        "read": "Leggi i tuoi dati",
        "download": "Scarica i tuoi dati (JSON)",
        "delete": "Cancella il mio account…",
        "password": "Per confermare, scrivi la tua password",
        "submit": "Cancella il mio account per sempre",
        "wrong": "La password non è giusta.",
        "deleted": "Il tuo account è cancellato",
        "back": "Torna a Sito di quartiere",
        "balance": "3 h 45 min in credito",
        "differs": "2 trasferimenti sono ancora in viaggio verso TimeRepublik.",
    },
    "en": {
        "hours": "My hours",
        "older": "Older postings",
        "data": "My data",
        "edit": "Edit your profile",
        "skill": "Small repairs",
        "save": "Save",
        "saved": "Profile saved.",
        "read": "Read your data",
        "download": "Download your data (JSON)",
        "delete": "Delete my account…",
        "password": "To confirm, type your password",
        "submit": "Delete my account for ever",
        "wrong": "The password is not right.",
        "deleted": "Your account is deleted",
        "back": "Back to Sito di quartiere",
        "balance": "3 h 45 min in credit",
        "differs": "2 transfers are still on their way to TimeRepublik.",
    },
}


def _seed(app, lang: str) -> Member:
    """A member with 25 postings, a timebank whose reading differs, and a website sign-in."""
    with app.app_context():
        member = create_member(
            email=f"walk-{lang}@example.org",
            display_name="Giulia Marchetti Dell'Acqua",
            password=PASSWORD,
            locale=lang,
            skills=["cooking"],
            municipio=6,
            email_verified_at=utcnow(),
        )
        platform = Platform(
            name="tr", display_name="TimeRepublik", connector="timerepublik", base_url="x"
        )
        db.session.add(platform)
        db.session.flush()
        db.session.add(
            PlatformLink(
                member_id=member.id,
                platform_id=platform.id,
                state="active",
                remote_member_id="m-1",
                remote_wallet_id="w-1",
            )
        )
        db.session.add(
            Consent(
                member_id=member.id,
                platform_id=platform.id,
                fields=list(SHARED_FIELDS),
                text_version=CONSENT_TEXT_VERSION,
            )
        )
        helper = create_member(email=f"helper-{lang}@example.org", display_name="Bruno Bianchi")
        coop = ledger.create_organization(name="Cooperativa Sociale Il Portico del Giambellino")
        mine = ledger.account_for_member(member.id).id
        for n in range(24):
            ledger.post_transfer(
                payer_account_id=ledger.account_for_member(helper.id).id,
                payee_account_id=mine,
                minutes=5 + n,
                description=f"Aiuto numero {n + 1}: spesa e compagnia al mercato di via Odazio",
                kind="help",
            )
        ledger.post_transfer(
            payer_account_id=mine,
            payee_account_id=ledger.account_for_organization(coop.id).id,
            minutes=171,
            description="Scrivania per la giornata",
            kind="desk",
        )
        # Every push to the timebank arrived but the last two.
        pushes = db.session.scalars(select(OutboxItem).order_by(OutboxItem.created_at)).all()
        for push in pushes[:-2]:
            push.state = "succeeded"
        balance = ledger.find_member_account(member.id).balance_minutes
        on_the_way = 28 - 171  # the last help received, and the desk used
        finished = datetime.now(UTC) - timedelta(minutes=5)
        run = ReconciliationRun(
            platform_id=platform.id, state="succeeded", started_at=finished, finished_at=finished
        )
        db.session.add(run)
        db.session.flush()
        remote = balance - on_the_way
        db.session.add(RemoteBalance(run_id=run.id, remote_wallet_id="w-1", minutes=remote))
        db.session.add(
            ReconciliationDifference(
                run_id=run.id,
                platform_id=platform.id,
                member_id=member.id,
                remote_wallet_id="w-1",
                local_minutes=balance,
                expected_remote_minutes=remote,
                remote_minutes=remote,
                difference_minutes=remote - balance,
                pending_outbound_minutes=on_the_way,
                explanation="outbound_pending",
            )
        )
        site, _ = create_client(
            kind="first_party",
            name="Sito di quartiere",
            post_logout_redirect_uris=["https://quartiere.example/"],
        )
        issue_token(site.client_id, "openid", member_id=member.id)
        db.session.commit()
        return member


@pytest.mark.parametrize("lang", ["it", "en"])
def test_hours_then_profile_then_copy_then_delete(app, unused_port, chromium, visit, lang):
    member = _seed(app, lang)
    words = TEXTS[lang]
    with LiveServer(app, unused_port) as gateway:
        context = chromium.new_context(
            locale="it-IT" if lang == "it" else "en-GB",
            accept_downloads=True,
        )
        page = context.new_page()
        page.goto(f"{gateway.url}/login?next=/account/hours")
        page.fill("#email", member.email)
        page.fill("#password", PASSWORD)
        page.keyboard.press("Enter")

        # My hours: the balance in words, the timebank's reading and why it differs, a page.
        page.wait_for_url(f"{gateway.url}/account/hours")
        page.get_by_role("heading", name=words["hours"], level=1).wait_for()
        assert page.inner_text("#balance") == words["balance"]
        assert words["differs"] in page.inner_text(".platform-balances")
        assert page.locator(".posting").count() == 20
        visit(page, "my hours")
        page.get_by_role("link", name=words["older"]).click()
        page.wait_for_url(re.compile(r".*/account/hours\?cursor=.*"))
        assert page.locator(".posting").count() == 5
        visit(page, "my hours, older postings")

        # My data, then the profile: add a skill, keep the rest.
        page.goto(f"{gateway.url}/account/data")
        page.get_by_role("heading", name=words["data"], level=1).wait_for()
        visit(page, "my data")
        page.get_by_role("link", name=words["edit"]).click()
        page.wait_for_url(f"{gateway.url}/account/data/profile")
        visit(page, "profile")
        page.get_by_label(words["skill"]).check()
        page.get_by_role("button", name=words["save"]).click()
        page.wait_for_url(f"{gateway.url}/account/data")
        page.get_by_role("status").filter(has_text=words["saved"]).wait_for()

        # The copy: read it, then download it.
        page.get_by_role("link", name=words["read"]).click()
        page.wait_for_url(f"{gateway.url}/account/data/export")
        visit(page, "readable copy")
        with page.expect_download() as download:
            page.get_by_role("link", name=words["download"]).click()
        saved = download.value
        assert re.fullmatch(r"my-data-\d{4}-\d{2}-\d{2}\.json", saved.suggested_filename)
        copy = json.loads(Path(saved.path()).read_text(encoding="utf-8"))
        assert copy["profile"]["skills"] == ["cooking", "repairs"]
        assert len(copy["hours"]["postings"]) == 25

        # Delete: a wrong password first, then the right one.
        page.goto(f"{gateway.url}/account/data")
        page.get_by_role("link", name=words["delete"]).click()
        page.wait_for_url(f"{gateway.url}/account/data/delete")
        visit(page, "delete account")
        page.get_by_label(words["password"]).fill("not the password")
        page.get_by_role("button", name=words["submit"]).click()
        page.get_by_role("alert").filter(has_text=words["wrong"]).wait_for()
        visit(page, "delete account, wrong password")
        page.get_by_label(words["password"]).fill(PASSWORD)
        page.get_by_role("button", name=words["submit"]).click()
        page.wait_for_url(f"{gateway.url}/account/deleted")
        page.get_by_role("heading", name=words["deleted"], level=1).wait_for()
        back = page.get_by_role("link", name=words["back"])
        assert back.get_attribute("href") == "https://quartiere.example/"
        visit(page, "account deleted")
        context.close()
    with app.app_context():
        assert db.session.scalar(select(Member.status).where(Member.id == member.id)) == "erased"

"""The member's own data: the overview, the profile (and the timebanks hearing of changes to it),
and the copy of everything the gateway holds about them, as a page and as a JSON file."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from gateway.admin.models import AdminAction
from gateway.db import db, utcnow
from gateway.federation.consent import CONSENT_TEXT_VERSION, SHARED_FIELDS
from gateway.federation.models import Consent, Platform, PlatformLink
from gateway.federation.platforms import add_platform
from gateway.jobs import make_worker
from gateway.ledger import services as ledger
from gateway.members.models import Member, MemberSession
from gateway.sync.handlers import member_data
from gateway.sync.models import OutboxItem
from gateway.sync.remote import connector_for
from tests.auth.oidc_helpers import log_in
from tests.factories import create_client, create_member
from tests.members.helpers import csrf
from tests.members.test_hours import _text
from tests.sandbox.conftest import CLIENT_ID, CLIENT_SECRET, start_sandbox


@pytest.fixture
def anna(app):
    with app.app_context():
        return create_member(
            email="anna@example.org",
            display_name="Anna Rossi",
            skills=["cooking"],
            municipio=4,
            email_verified_at=utcnow(),
            password="anna's long password",
        )


def _reload(app, member) -> Member:
    with app.app_context():
        found = db.session.get(Member, member.id)
        db.session.expunge(found)
        return found


def _platform(app, name: str, member=None, state: str = "active", fields=SHARED_FIELDS):
    """A timebank; ``member`` linked to it (``state``) with consent to ``fields``."""
    with app.app_context():
        platform = Platform(name=name, display_name=name.title(), connector="x", base_url="x")
        db.session.add(platform)
        db.session.flush()
        if member is not None:
            db.session.add(
                PlatformLink(
                    member_id=member.id,
                    platform_id=platform.id,
                    state=state,
                    remote_member_id=f"m-{name}" if state == "active" else None,
                    remote_wallet_id=f"w-{name}" if state == "active" else None,
                )
            )
            db.session.add(
                Consent(
                    member_id=member.id,
                    platform_id=platform.id,
                    fields=list(fields),
                    text_version=CONSENT_TEXT_VERSION,
                )
            )
        db.session.commit()
        return platform


def _updates(app) -> list[tuple[str, dict]]:
    with app.app_context():
        items = db.session.scalars(
            select(OutboxItem).where(OutboxItem.kind == "update_member").order_by(OutboxItem.id)
        )
        return sorted((item.platform_id, item.payload) for item in items)


@pytest.mark.parametrize(
    "path",
    [
        "/account/data",
        "/account/data/profile",
        "/account/data/export",
        "/account/data/export.json",
        "/account/data/delete",
    ],
)
def test_every_data_page_asks_visitors_to_log_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_the_overview_shows_the_profile_and_the_three_things_to_do(app, client, anna):
    log_in(client, anna)
    page = _text(client.get("/account/data"))
    assert "I miei dati" in page
    assert "Anna Rossi" in page
    assert "anna@example.org" in page
    assert "Municipio 4" in page
    assert "Cucina" in page
    html = client.get("/account/data").get_data(as_text=True)
    for path in ("/account/data/profile", "/account/data/export", "/account/data/delete"):
        assert f'href="{path}"' in html
    assert 'href="/account/data/export.json" download' in html


# -- the profile --------------------------------------------------------------------------------


def test_the_profile_form_shows_the_current_values(app, client, anna):
    log_in(client, anna)
    html = client.get("/account/data/profile").get_data(as_text=True)
    assert 'value="Anna Rossi"' in html
    assert re.search(r'id="skill-cooking"[^>]*checked', html)
    assert not re.search(r'id="skill-tutoring"[^>]*checked', html)
    assert '<option value="4" selected>' in html


def test_saving_the_profile_changes_it(app, client, anna):
    log_in(client, anna)
    response = client.post(
        "/account/data/profile",
        data={
            "csrf_token": csrf(client),
            "display_name": "  Anna R.  ",
            "locale": "it",
            "skills": ["tutoring", "babysitting"],
            "municipio": "",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/account/data"
    member = _reload(app, anna)
    assert member.display_name == "Anna R."
    assert member.skills == ["babysitting", "tutoring"]  # in the form's order
    assert member.municipio is None
    assert "Profilo salvato." in _text(client.get("/account/data"))


def test_changing_the_language_changes_the_pages(app, client, anna):
    log_in(client, anna)
    client.post(
        "/account/data/profile",
        data={"csrf_token": csrf(client), "display_name": "Anna Rossi", "locale": "en"},
    )
    assert _reload(app, anna).locale == "en"
    page = _text(client.get("/account/data", headers={"Accept-Language": "it"}))
    assert "Profile saved." in page
    assert "My data" in page


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"display_name": ""}, "display_name", "Questo campo è obbligatorio."),
        ({"display_name": "   "}, "display_name", "Questo campo è obbligatorio."),
        ({"display_name": "x" * 121}, "display_name", "da 1 a 120 caratteri"),
        ({"display_name": "Anna", "skills": ["juggling"]}, "skills", "Questo valore non è valido."),
        ({"display_name": "Anna", "municipio": "12"}, "municipio", "Questo valore non è valido."),
        ({"display_name": "Anna", "locale": "fr"}, "locale", "Questo valore non è valido."),
    ],
)
def test_a_bad_profile_is_refused_field_by_field_and_changes_nothing(
    app, client, anna, form, field, message
):
    log_in(client, anna)
    response = client.post("/account/data/profile", data={"csrf_token": csrf(client), **form})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="error-summary"' in html
    assert f'href="#{field}"' in html
    assert message in _text(response)
    member = _reload(app, anna)
    assert (member.display_name, member.skills, member.municipio) == ("Anna Rossi", ["cooking"], 4)
    assert _updates(app) == []


def test_a_profile_change_without_the_csrf_token_changes_nothing(app, client, anna):
    log_in(client, anna)
    response = client.post("/account/data/profile", data={"display_name": "Someone else"})
    assert response.status_code == 400
    assert _reload(app, anna).display_name == "Anna Rossi"


def test_linked_timebanks_receive_a_change_they_were_allowed_to_see(app, client, anna):
    linked = _platform(app, "tr", anna)
    narrow = _platform(app, "kom", anna, fields=("external_id", "email", "display_name"))
    _platform(app, "joining", anna, state="pending")  # its registration will carry the change
    _platform(app, "other")  # not linked at all
    log_in(client, anna)

    client.post(
        "/account/data/profile",
        data={
            "csrf_token": csrf(client),
            "display_name": "Anna Rossi",
            "skills": ["cooking", "repairs"],
            "municipio": "4",
        },
    )
    # Skills are shared with tr only: kom's consent leaves them out.
    assert _updates(app) == [(linked.id, {"fields": ["locale", "skills"]})]

    client.post(
        "/account/data/profile",
        data={
            "csrf_token": csrf(client),
            "display_name": "Anna R.",
            "skills": ["cooking", "repairs"],
            "municipio": "4",
        },
    )
    assert _updates(app) == sorted(
        [
            (linked.id, {"fields": ["locale", "skills"]}),
            (linked.id, {"fields": ["locale", "skills"]}),
            (narrow.id, {"fields": []}),
        ]
    )


def test_a_change_no_timebank_holds_sends_nothing(app, client, anna):
    _platform(app, "tr", anna)
    log_in(client, anna)
    client.post(
        "/account/data/profile",
        data={
            "csrf_token": csrf(client),
            "display_name": "Anna Rossi",
            "skills": ["cooking"],
            "municipio": "6",  # the municipio is never shared
        },
    )
    assert _reload(app, anna).municipio == 6
    assert _updates(app) == []
    assert "Profilo salvato." in _text(client.get("/account/data"))


def test_a_withdrawn_consent_stops_the_updates(app, client, anna):
    platform = _platform(app, "tr", anna)
    with app.app_context():
        consent = db.session.scalar(select(Consent).where(Consent.platform_id == platform.id))
        consent.withdrawn_at = utcnow()
        db.session.commit()
    log_in(client, anna)
    client.post(
        "/account/data/profile",
        data={"csrf_token": csrf(client), "display_name": "Anna B."},
    )
    assert _reload(app, anna).display_name == "Anna B."
    assert _updates(app) == []


# -- the copy of everything ----------------------------------------------------------------------


@pytest.fixture
def full_record(app, anna):
    """Anna with a timebank, a withdrawn and an active consent, postings, an app, two logins."""
    platform = _platform(app, "tr", anna)
    with app.app_context():
        bruno = create_member(email="bruno@example.org", display_name="Bruno Bianchi")
        ledger.post_transfer(
            payer_account_id=ledger.account_for_member(bruno.id).id,
            payee_account_id=ledger.account_for_member(anna.id).id,
            minutes=90,
            description="Spesa",
            kind="help",
        )
        old = Platform(name="old", display_name="Vecchia banca", connector="x", base_url="x")
        db.session.add(old)
        db.session.flush()
        db.session.add(
            Consent(
                member_id=anna.id,
                platform_id=old.id,
                fields=["external_id", "email"],
                text_version="2025-01-v0",
                withdrawn_at=utcnow(),
            )
        )
        client, _ = create_client(name="Bottega Solidale")
        from gateway.auth.models import ClientConsent

        db.session.add(ClientConsent(member_id=anna.id, client_id=client.client_id, scope="openid"))
        db.session.add(
            AdminAction(
                actor="cli",
                action="member.enable",
                target_type="member",
                target_id=anna.id,
                reason="confirmed by phone",
            )
        )
        db.session.commit()
    return {"platform": platform, "bruno": bruno}


def test_the_download_is_a_json_attachment_with_everything(app, client, anna, full_record):
    log_in(client, anna)
    other_browser = app.test_client()
    log_in(other_browser, anna)

    response = client.get("/account/data/export.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert re.fullmatch(
        r'attachment; filename="my-data-\d{4}-\d{2}-\d{2}\.json"',
        response.headers["Content-Disposition"],
    )
    assert response.headers["Cache-Control"] == "no-store"
    copy = json.loads(response.get_data(as_text=True))
    assert set(copy) == {
        "generated_at",
        "profile",
        "hours",
        "timebanks",
        "consents",
        "apps",
        "signed_in_sites",
        "logins",
        "operator_actions",
    }
    assert copy["profile"]["email"] == "anna@example.org"
    assert copy["profile"]["skills"] == ["cooking"]
    assert copy["hours"]["balance_minutes"] == 90
    (posting,) = copy["hours"]["postings"]
    assert posting["minutes"] == 90
    assert posting["kind"] == "help"
    assert posting["counterparts"] == [{"kind": "member", "name": "Bruno Bianchi"}]
    assert posting["sent_to"] == [{"platform": "Tr", "state": "on_its_way"}]
    (link,) = copy["timebanks"]
    assert (link["platform"], link["state"], link["remote_member_id"]) == ("Tr", "active", "m-tr")
    versions = {
        (c["platform"], c["text_version"], c["withdrawn_at"] is None) for c in copy["consents"]
    }
    assert versions == {("Tr", CONSENT_TEXT_VERSION, True), ("Vecchia banca", "2025-01-v0", False)}
    assert [app["name"] for app in copy["apps"]] == ["Bottega Solidale"]
    assert len(copy["logins"]) == 2
    assert [login["this_browser"] for login in copy["logins"]].count(True) == 1
    assert copy["operator_actions"][0]["reason"] == "confirmed by phone"
    assert copy["generated_at"].endswith("+00:00")


def test_the_download_holds_no_secrets_and_no_one_else_s_address(app, client, anna, full_record):
    log_in(client, anna)
    body = client.get("/account/data/export.json").get_data(as_text=True)
    with app.app_context():
        member = db.session.get(Member, anna.id)
        login = db.session.scalars(select(MemberSession)).first()
        assert member.password_hash not in body
        assert login.token_hash not in body
    assert "password" not in body
    assert "bruno@example.org" not in body


def test_the_readable_copy_shows_the_same_in_words(app, client, anna, full_record):
    log_in(client, anna)
    page = _text(client.get("/account/data/export"))
    for expected in (
        "Una copia dei tuoi dati",
        "anna@example.org",
        "Tr",
        "Vecchia banca",
        CONSENT_TEXT_VERSION,
        "2025-01-v0",
        "Bottega Solidale",
        "questo browser",
        "confirmed by phone",
        "Aiuto dato +1 h 30 min",
        "con Bruno Bianchi",
        "1 h 30 min in credito",
    ):
        assert expected in page, expected


def test_the_readable_copy_of_a_new_member_says_what_is_not_there(app, client):
    with app.app_context():
        newcomer = create_member(email="new@example.org", display_name="Nuova", locale="en")
    log_in(client, newcomer)
    page = _text(client.get("/account/data/export"))
    for expected in (
        "Email confirmed on not yet",
        "What you can do none given",
        "You are not linked to any timebank.",
        "No consents.",
        "You have not given any app access.",
        "No sites.",
        "No postings yet.",
    ):
        assert expected in page, expected
    copy = client.get("/account/data/export.json").json
    assert copy["hours"] == {
        "account_id": None,
        "balance_minutes": 0,
        "credit_limit_minutes": None,
        "postings": [],
    }


def test_a_consent_without_skills_sends_none(app, anna):
    with app.app_context():
        member = db.session.get(Member, anna.id)
        assert list(member_data(member, []).skills) == []
        assert list(member_data(member, ["skills"]).skills) == ["cooking"]
        assert list(member_data(member, None).skills) == ["cooking"]  # rows from before fields


def test_a_profile_change_reaches_the_sandbox_timebank(app, client, anna, tmp_path):
    sandbox = start_sandbox(tmp_path / "sandbox")
    try:
        with app.app_context():
            platform = add_platform(
                "sandbox",
                "timerepublik",
                sandbox.url,
                credentials={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
                display_name="Banca di prova",
            )
            db.session.commit()
        log_in(client, anna)
        client.post("/account/timebanks/sandbox/connect", data={"csrf_token": csrf(client)})
        with app.app_context():
            make_worker(app, fork=False).work(burst=True)
            link = db.session.scalar(select(PlatformLink))
            assert link.state == "active"
            remote_id = link.remote_member_id
        client.post(
            "/account/data/profile",
            data={
                "csrf_token": csrf(client),
                "display_name": "Anna Maria Rossi",
                "locale": "en",
                "skills": ["tutoring"],
            },
        )
        with app.app_context():
            make_worker(app, fork=False).work(burst=True)
            (update,) = db.session.scalars(
                select(OutboxItem).where(OutboxItem.kind == "update_member")
            ).all()
            assert update.state == "succeeded"
            remote = connector_for(db.session.get(Platform, platform.id)).client.get_member(
                remote_id
            )
        assert (remote["display_name"], remote["locale"], remote["skills"]) == (
            "Anna Maria Rossi",
            "en",
            ["tutoring"],
        )
    finally:
        sandbox.server.stop()
    assert sandbox.contract_errors == []


def test_saving_the_same_profile_says_nothing_changed_and_sends_nothing(app, client, anna):
    _platform(app, "tr", anna)
    log_in(client, anna)
    client.post(
        "/account/data/profile",
        data={
            "csrf_token": csrf(client),
            "display_name": "Anna Rossi",
            "locale": "it",
            "skills": ["cooking"],
            "municipio": "4",
        },
    )
    assert "Non c'era niente da cambiare." in _text(client.get("/account/data"))
    assert _updates(app) == []

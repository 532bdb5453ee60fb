"""Consent per timebank, and linking an existing account through the platform's own OAuth."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest
import requests
from sqlalchemy import select

from connectors.interface import MemberData
from gateway.config import ConfigError, load_settings
from gateway.db import db, utcnow
from gateway.devsetup import SANDBOX_CREDENTIALS
from gateway.federation.models import Consent, Platform, PlatformLink
from gateway.federation.platforms import add_platform
from gateway.i18n import gettext
from gateway.sync.models import OutboxItem
from gateway.sync.remote import connector_for
from gateway_sandbox import SandboxServer, create_sandbox_app
from tests.auth.oidc_helpers import log_in
from tests.factories import create_member
from tests.members.helpers import csrf, deliver_mail, text_of

PASSWORD = "una frase lunga abbastanza"


@pytest.fixture
def platform(app) -> Platform:
    with app.app_context():
        row = add_platform(
            "tr",
            "timerepublik",
            "https://tr.example/api",
            credentials={"client_id": "gw", "client_secret": "s"},
            display_name="TimeRepublik",
        )
        db.session.commit()
        return row


@pytest.fixture
def member(app, client):
    with app.app_context():
        row = create_member(email="rosa@example.org", password=PASSWORD, email_verified_at=utcnow())
    log_in(client, row)
    return row


def _items(app, member):
    with app.app_context():
        return [
            (i.kind, i.payload)
            for i in db.session.scalars(
                select(OutboxItem)
                .where(OutboxItem.member_id == member.id)
                .order_by(OutboxItem.created_at)
            )
        ]


@pytest.mark.parametrize(("language", "words"), [("it", "Iscrivimi a"), ("en", "Sign me up to")])
def test_page_shows_exactly_what_is_shared(app, client, platform, member, language, words):
    # A logged-in member's own language wins over the browser's.
    with app.app_context():
        from gateway.members.models import Member

        db.session.get(Member, member.id).locale = language
        db.session.commit()
    html = client.get("/account/timebanks", headers={"Accept-Language": "it"}).get_data(
        as_text=True
    )
    assert f"{words} TimeRepublik" in html
    for field in ("email", "display_name", "locale", "skills", "external_id"):
        from gateway.i18n import gettext

        assert gettext(f"consent.field.{field}", locale=language).replace("'", "&#39;") in html
    assert "2026-11-v1" in html


def test_connect_records_consent_and_registration_row(app, client, platform, member):
    response = client.post(
        "/account/timebanks/tr/connect",
        data={"csrf_token": csrf(client), "next": "/oauth/authorize?x=1"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/account/timebanks?next=%2Foauth%2Fauthorize%3Fx%3D1"
    with app.app_context():
        consent = db.session.scalar(select(Consent).where(Consent.member_id == member.id))
        assert consent.text_version == "2026-11-v1"
        assert consent.fields == ["external_id", "email", "display_name", "locale", "skills"]
        assert consent.granted_at is not None
        link = db.session.scalar(select(PlatformLink).where(PlatformLink.member_id == member.id))
        assert link.state == "pending"
    assert _items(app, member) == [("register_member", {"fields": ["locale", "skills"]})]
    # Connecting twice changes nothing.
    client.post("/account/timebanks/tr/connect", data={"csrf_token": csrf(client)})
    assert len(_items(app, member)) == 1
    page = client.get("/account/timebanks?next=/oauth/authorize%3Fx%3D1").get_data(as_text=True)
    assert 'href="/oauth/authorize?x=1"' in page


def test_disconnect_withdraws_and_writes_erasure(app, client, platform, member):
    client.post("/account/timebanks/tr/connect", data={"csrf_token": csrf(client)})
    client.post("/account/timebanks/tr/disconnect", data={"csrf_token": csrf(client)})
    with app.app_context():
        consent = db.session.scalar(select(Consent).where(Consent.member_id == member.id))
        assert consent.withdrawn_at is not None
    kinds = [kind for kind, _ in _items(app, member)]
    assert kinds == ["register_member", "erase_member"]


def test_consent_needs_csrf_and_login(app, client, platform, member):
    assert client.post("/account/timebanks/tr/connect").status_code == 400
    assert _items(app, member) == []
    anonymous = app.test_client()
    token = csrf(anonymous)
    response = anonymous.post("/account/timebanks/tr/connect", data={"csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_unknown_or_disabled_timebank_is_404(app, client, platform, member):
    assert (
        client.post(
            "/account/timebanks/nope/connect", data={"csrf_token": csrf(client)}
        ).status_code
        == 404
    )
    with app.app_context():
        db.session.get(Platform, platform.id).enabled = False
        db.session.commit()
    assert (
        client.post("/account/timebanks/tr/connect", data={"csrf_token": csrf(client)}).status_code
        == 404
    )


def test_linking_an_existing_account_through_the_sandbox(make_app, tmp_path):
    sandbox = SandboxServer(
        create_sandbox_app({"SANDBOX_DATA_DIR": str(tmp_path / "sandbox")})
    ).start()
    try:
        app = make_app()
        client = app.test_client()
        with app.app_context():
            platform = add_platform(
                "sandbox", "timerepublik", sandbox.url, credentials=SANDBOX_CREDENTIALS
            )
            db.session.commit()
            remote = connector_for(platform).register_member(
                MemberData(external_id="elsewhere", email="sara@example.org", display_name="Sara"),
                "link-test-1",
            )
            member = create_member(email="sara@example.org", email_verified_at=utcnow())
        log_in(client, member)
        start = client.post("/account/timebanks/sandbox/link", data={"csrf_token": csrf(client)})
        assert start.status_code == 302
        authorize_url = start.headers["Location"]
        assert authorize_url.startswith(f"{sandbox.url}/oauth/authorize?")
        assert "code_challenge_method=S256" in authorize_url
        # The member, at the timebank, allows the link.
        browser = requests.Session()
        consent_page = browser.get(authorize_url, timeout=5)
        assert consent_page.status_code == 200
        from urllib.parse import parse_qsl, urlsplit

        params = dict(parse_qsl(urlsplit(authorize_url).query))
        back = browser.post(
            f"{sandbox.url}/oauth/authorize",
            data={**params, "decision": "allow", "email": "sara@example.org"},
            allow_redirects=False,
            timeout=5,
        )
        callback = back.headers["Location"]
        assert callback.startswith(app.config["GATEWAY_BASE_URL"])
        done = client.get(callback[len(app.config["GATEWAY_BASE_URL"]) :])
        assert done.status_code == 302
        with app.app_context():
            link = db.session.scalar(
                select(PlatformLink).where(PlatformLink.member_id == member.id)
            )
            assert link.state == "active"
            assert link.linked_via == "oauth"
            assert link.remote_member_id == remote.id
            assert link.remote_wallet_id == remote.wallet_id
            assert db.session.scalar(select(Consent).where(Consent.member_id == member.id))
        # A forged or replayed callback does nothing.
        replay = client.get(callback[len(app.config["GATEWAY_BASE_URL"]) :])
        assert replay.status_code == 302
        with client.session_transaction() as session:
            flashes = session.get("_flashes", [])
        assert any("riprova" in text or "again" in text for _, text in flashes)
    finally:
        sandbox.stop()


# A confirmed address and a recent login


@pytest.fixture
def unverified(app, client):
    with app.app_context():
        row = create_member(email="nuova@example.org", password=PASSWORD, locale="en")
    log_in(client, row)
    return row


def test_an_unconfirmed_member_is_told_why_and_offered_the_link_again(
    app, client, platform, unverified
):
    html = client.get("/account/timebanks").get_data(as_text=True)
    assert "confirm your email address" in html
    assert 'action="/verify-email/resend"' in html
    assert 'action="/account/timebanks/tr/connect"' not in html
    assert 'action="/account/timebanks/tr/link"' not in html
    # The banner's resend (on every page) comes back here.
    sent = client.post(
        "/verify-email/resend", data={"csrf_token": csrf(client), "next": "/account/timebanks"}
    )
    assert sent.headers["Location"] == "/account/timebanks"
    (message,) = deliver_mail(app)
    assert "/verify-email?token=" in text_of(message)


@pytest.mark.parametrize("step", ["connect", "link"])
def test_an_unconfirmed_member_cannot_join_or_link(app, client, platform, unverified, step):
    response = client.post(f"/account/timebanks/tr/{step}", data={"csrf_token": csrf(client)})
    assert response.status_code == 302
    assert response.headers["Location"] == "/account/timebanks"  # never the platform's page
    assert _flashes(client) == ["Confirm your email address first."]
    assert _items(app, unverified) == []
    with app.app_context():
        assert db.session.scalar(select(Consent)) is None
        assert db.session.scalar(select(PlatformLink)) is None


@pytest.mark.parametrize("step", ["connect", "link"])
def test_an_old_login_logs_in_again_and_comes_back_to_the_same_step(
    app, client, platform, member, step
):
    log_in(client, member, auth_time=int(time.time()) - 601)
    next_url = "/oauth/authorize?x=1"
    response = client.post(
        f"/account/timebanks/tr/{step}", data={"csrf_token": csrf(client), "next": next_url}
    )
    assert response.status_code == 302
    back = "/account/timebanks?" + urlencode({"next": next_url})
    assert response.headers["Location"] == "/login?" + urlencode(
        {"next": back, "login_hint": "rosa@example.org"}
    )
    assert _items(app, member) == []
    login = client.get(response.headers["Location"])
    assert gettext("timebanks.reauth", locale="it") in login.get_data(as_text=True)
    # The member logs in through the page and lands on the same step, with the same `next`.
    again = client.post(
        "/login",
        data={
            "email": "rosa@example.org",
            "password": PASSWORD,
            "next": back,
            "csrf_token": csrf(client),
        },
    )
    assert again.headers["Location"] == back
    done = client.post(
        f"/account/timebanks/tr/{step}", data={"csrf_token": csrf(client), "next": next_url}
    )
    if step == "connect":
        assert done.headers["Location"] == back
        assert [kind for kind, _ in _items(app, member)] == ["register_member"]
    else:
        assert done.headers["Location"].startswith("https://tr.example/api/oauth/authorize?")


def test_how_recent_a_login_must_be_is_a_setting(make_app, platform):
    app = make_app(LINK_REAUTH_MAX_AGE_SECONDS=3600)
    client = app.test_client()
    with app.app_context():
        row = create_member(email_verified_at=utcnow())
    log_in(client, row, auth_time=int(time.time()) - 1800)
    response = client.post("/account/timebanks/tr/connect", data={"csrf_token": csrf(client)})
    assert response.headers["Location"] == "/account/timebanks"
    assert [kind for kind, _ in _items(app, row)] == ["register_member"]


@pytest.mark.parametrize("value", ["59", "ten"])
def test_a_wrong_reauthentication_age_stops_the_gateway(value):
    with pytest.raises(ConfigError, match="LINK_REAUTH_MAX_AGE_SECONDS"):
        load_settings({"LINK_REAUTH_MAX_AGE_SECONDS": value, "SECRET_KEY": "x" * 32})


def test_disconnecting_needs_neither(app, client, platform, member):
    client.post("/account/timebanks/tr/connect", data={"csrf_token": csrf(client)})
    log_in(client, member, auth_time=int(time.time()) - 3600)
    client.post("/account/timebanks/tr/disconnect", data={"csrf_token": csrf(client)})
    assert [kind for kind, _ in _items(app, member)] == ["register_member", "erase_member"]


# Disconnecting a linked account, and coming back


def _linked(app, member, platform, remote_id="tr_m9", state="active"):
    with app.app_context():
        db.session.add(
            PlatformLink(
                member_id=member.id,
                platform_id=platform.id,
                remote_member_id=remote_id,
                remote_wallet_id=f"w_{remote_id}",
                state=state,
                linked_via="oauth",
            )
        )
        db.session.commit()


def test_disconnecting_a_linked_account_asks_to_revoke_the_link(app, client, platform, member):
    _linked(app, member, platform)
    with app.app_context():
        from gateway.federation.consent import record_consent
        from gateway.members.models import Member

        record_consent(db.session.get(Member, member.id), db.session.get(Platform, platform.id))
        db.session.commit()
    html = client.get("/account/timebanks").get_data(as_text=True)
    own = gettext("timebanks.own_account", locale="it", platform="TimeRepublik")
    assert own.replace("'", "&#39;") in html
    client.post("/account/timebanks/tr/disconnect", data={"csrf_token": csrf(client)})
    assert _items(app, member) == [("erase_member", {"unlink": True})]
    with app.app_context():
        assert db.session.scalar(select(PlatformLink)).state == "erasing"


def test_an_unlinked_own_account_is_linked_again_never_replaced(app, client, platform, member):
    _linked(app, member, platform, remote_id=None, state="erased")
    html = client.get("/account/timebanks").get_data(as_text=True)
    assert "Collega di nuovo il mio account su TimeRepublik" in html
    assert "Iscrivimi a TimeRepublik" not in html
    # Even the sign-up form of an older page leads to linking, not to a second account.
    response = client.post("/account/timebanks/tr/connect", data={"csrf_token": csrf(client)})
    assert response.headers["Location"].startswith("https://tr.example/api/oauth/authorize?")
    assert _items(app, member) == []


def test_linking_waits_while_an_unlink_is_on_its_way(app, client, platform, member):
    _linked(app, member, platform, state="erasing")
    html = client.get("/account/timebanks").get_data(as_text=True)
    assert 'action="/account/timebanks/tr/link"' not in html
    for step in ("connect", "link"):
        response = client.post(f"/account/timebanks/tr/{step}", data={"csrf_token": csrf(client)})
        assert response.headers["Location"] == "/account/timebanks"
    assert _flashes(client) == [gettext("timebanks.error.busy", locale="it")] * 2


def _flashes(client) -> list[str]:
    with client.session_transaction() as session:
        return [text for _, text in session.pop("_flashes", [])]

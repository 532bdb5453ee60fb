"""Consent per timebank, and linking an existing account through the platform's own OAuth."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from connectors.interface import MemberData
from gateway.db import db
from gateway.devsetup import SANDBOX_CREDENTIALS
from gateway.federation.models import Consent, Platform, PlatformLink
from gateway.federation.platforms import add_platform
from gateway.sandbox import SandboxServer, create_sandbox_app
from gateway.sync.models import OutboxItem
from gateway.sync.remote import connector_for
from tests.auth.oidc_helpers import log_in
from tests.factories import create_member
from tests.members.helpers import csrf


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
        row = create_member(email="rosa@example.org")
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
            member = create_member(email="sara@example.org")
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

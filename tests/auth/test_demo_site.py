"""The demo relying party: its client registration, its sign-in redirects, a sign-in that
comes back to another browser, and the member's balance read afresh."""

from __future__ import annotations

import pytest
import requests
from click.testing import CliRunner

from gateway.auth.models import OAuthClient
from gateway.cli import main
from gateway.db import db, utcnow
from gateway.devsetup import DEMO_CLIENT_ID, ensure_demo_client
from gateway.ledger import services as ledger
from gateway_demo_site.app import balance_sentence, create_demo_app
from tests.auth.oidc_helpers import query
from tests.factories import create_member
from tests.live import LiveServer, browser_login, follow_until

PASSWORD = "a long enough passphrase"

DEMO = "http://127.0.0.1:5999"


def test_demo_client_is_first_party_and_its_secret_renews(app):
    first = ensure_demo_client(app, DEMO)
    second = ensure_demo_client(app, DEMO)
    assert first
    assert second
    assert first != second
    with app.app_context():
        client = db.session.query(OAuthClient).filter_by(client_id=DEMO_CLIENT_ID).one()
        assert client.kind == "first_party"
        assert client.redirect_uris == [f"{DEMO}/callback"]
        assert not client.check_client_secret(first)
        assert client.check_client_secret(second)


def test_demo_site_sends_people_to_the_gateway_with_pkce(make_app, unused_port):
    gateway = make_app(GATEWAY_BASE_URL=f"http://127.0.0.1:{unused_port}")
    secret = ensure_demo_client(gateway, DEMO)
    with LiveServer(gateway, unused_port) as live:
        demo = create_demo_app(live.url, DEMO_CLIENT_ID, secret, DEMO).test_client()
        assert "/login" in demo.get("/").get_data(as_text=True)
        login = demo.get("/login")
        assert login.status_code == 302
        location = login.headers["Location"]
        assert location.startswith(f"{live.url}/oauth/authorize?")
        params = query(location)
        assert params["code_challenge_method"] == "S256"
        assert params["redirect_uri"] == f"{DEMO}/callback"
        assert params["nonce"]
        assert "prompt" not in params
        signup = query(demo.get("/login?signup=1").headers["Location"])
        assert signup["prompt"] == "create"
        refused = demo.get("/callback?error=access_denied&state=x")
        assert refused.status_code == 400
        assert "access_denied" in refused.get_data(as_text=True)


def test_demo_site_command_needs_its_secret(tmp_path):
    result = CliRunner().invoke(main, ["demo-site"], env={"DEMO_SITE_CLIENT_SECRET": ""})
    assert result.exit_code == 2
    assert "DEMO_SITE_CLIENT_SECRET" in result.output


@pytest.mark.parametrize(
    ("minutes", "lang", "said"),
    [
        (270, "it", "Saldo ore: 4 h 30 min a tuo favore."),
        (270, "en", "Hour balance: 4 h 30 min in your favour."),
        (-240, "it", "Saldo ore: 4 h da restituire."),
        (-240, "en", "Hour balance: 4 h to give back."),
        (0, "it", "Saldo ore: sei in pari."),
        (0, "en", "Hour balance: you are even."),
    ],
)
def test_the_balance_reads_naturally_in_both_languages(minutes, lang, said):
    assert balance_sentence(minutes, lang) == said


def test_a_sign_in_back_in_another_browser_starts_again_kindly(make_app, unused_port):
    gateway = make_app(GATEWAY_BASE_URL=f"http://127.0.0.1:{unused_port}")
    secret = ensure_demo_client(gateway, DEMO)
    with LiveServer(gateway, unused_port) as live:
        demo = create_demo_app(live.url, DEMO_CLIENT_ID, secret, DEMO).test_client()
        # A code and state the demo site never asked for in this browser (mismatching_state).
        answer = demo.get(
            "/callback?code=abc&state=started-elsewhere", headers={"Accept-Language": "en"}
        )
    assert answer.status_code == 400
    html = answer.get_data(as_text=True)
    assert "<h1>Let&#39;s sign you in again</h1>" in html
    assert '<a class="button" href="/login">Sign in again</a>' in html
    assert "mismatching_state" not in html


def test_the_balance_is_read_afresh_and_the_token_refreshed(make_app, unused_port):
    gateway = make_app(GATEWAY_BASE_URL=f"http://127.0.0.1:{unused_port}")
    secret = ensure_demo_client(gateway, DEMO)
    with gateway.app_context():
        member = create_member(
            email="rosa@example.org", password=PASSWORD, email_verified_at=utcnow()
        )
    with LiveServer(gateway, unused_port) as live:
        demo = create_demo_app(live.url, DEMO_CLIENT_ID, secret, DEMO).test_client()
        browser = requests.Session()
        browser_login(browser, live.url, "rosa@example.org", PASSWORD)
        start = demo.get("/login").headers["Location"]
        back = follow_until(browser, start, f"{DEMO}/callback")
        assert demo.get(back.removeprefix(DEMO)).status_code == 302
        assert "Saldo ore: sei in pari." in demo.get("/").get_data(as_text=True)
        with gateway.app_context():
            desk = ledger.create_organization(name="Coworking", credit_limit_minutes=None)
            ledger.post_transfer(
                payer_account_id=ledger.account_for_organization(desk.id).id,
                payee_account_id=ledger.account_for_member(member.id).id,
                minutes=150,
                description="help given",
            )
            db.session.commit()
        with demo.session_transaction() as session:
            old = session["token"]["access_token"]
            session["token"] = {**session["token"], "expires_at": 1}  # long expired
        page = demo.get("/").get_data(as_text=True)
        assert "Saldo ore: 2 h 30 min a tuo favore." in page
        with demo.session_transaction() as session:
            assert session["token"]["access_token"] != old
            assert session["token"]["expires_at"] > 1

"""The demo relying party: its client registration and its sign-in redirects."""

from __future__ import annotations

from click.testing import CliRunner

from gateway.auth.models import OAuthClient
from gateway.cli import main
from gateway.db import db
from gateway.demo_site.app import create_demo_app
from gateway.devsetup import DEMO_CLIENT_ID, ensure_demo_client
from tests.auth.oidc_helpers import query
from tests.live import LiveServer

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

"""`gateway platforms ...` on a real database (partner HTTP with `responses`, or the sandbox)."""

from __future__ import annotations

import base64
import json

import pytest
import responses
from click.testing import CliRunner
from sqlalchemy import func, select

from gateway.cli import main
from gateway.db import db
from gateway.federation.models import Platform, WebhookSecret

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def _env(app_config) -> dict:
    return {
        "DATABASE_URL": app_config["DATABASE_URL"],
        "GATEWAY_DATA_DIR": app_config["GATEWAY_DATA_DIR"],
        "SECRET_KEY": app_config["SECRET_KEY"],
    }


def _run(app_config, *args, stdin=None):
    return CliRunner().invoke(main, list(args), env=_env(app_config), input=stdin)


def test_add_show_and_rotate(app, app_config):
    added = _run(
        app_config,
        "platforms",
        "add",
        "tr",
        "--connector",
        "timerepublik",
        "--base-url",
        "https://tr.test/api",
        "--webhook-secret",
        SECRET,
        "--credentials-stdin",
        "--clearing-wallet",
        "w-clear",
        "--no-register",
        stdin='{"client_id": "gw", "client_secret": "very-secret-value"}',
    )
    assert added.exit_code == 0, added.output
    shown = _run(app_config, "platforms", "show", "tr")
    assert shown.exit_code == 0
    assert "very-secret-value" not in shown.output
    assert SECRET not in shown.output
    assert f"…{SECRET[-4:]}" in shown.output
    assert "client_id, client_secret (values hidden)" in shown.output
    revoked = _run(app_config, "platforms", "secrets", "revoke", "tr", SECRET[-4:])
    assert revoked.exit_code == 0, revoked.output
    assert "secrets:     none" in _run(app_config, "platforms", "show", "tr").output


def test_bad_input_is_one_line_and_exit_2(app, app_config):
    unknown = _run(
        app_config, "platforms", "add", "x", "--connector", "nope", "--base-url", "https://x"
    )
    assert unknown.exit_code == 2
    assert "No connector 'nope'; available:" in unknown.output
    bad_secret = _run(
        app_config,
        "platforms",
        "add",
        "y",
        "--connector",
        "timerepublik",
        "--base-url",
        "https://y",
        "--webhook-secret",
        "plain",
    )
    assert bad_secret.exit_code == 2
    assert "whsec_" in bad_secret.output
    assert _run(app_config, "platforms", "show", "missing").exit_code == 2


def test_a_komunitin_platform_asks_the_gateway_for_its_tokens(app, app_config):
    added = _run(
        app_config,
        *("platforms", "add", "kom", "--connector", "komunitin"),
        *("--base-url", "https://accounting.komunitin.test"),
        *("--option", "currency=TEST", "--option", "token_source=gateway"),
    )
    assert added.exit_code == 0, added.output
    refused = _run(
        app_config,
        *("platforms", "add", "kom2", "--connector", "komunitin"),
        *("--base-url", "https://accounting.komunitin.test"),
        *("--option", "currency=TEST"),
        *("--option", "token_source=gateway.auth.minting:komunitin_token"),
    )
    assert refused.exit_code != 0
    assert "token_source is 'gateway' or absent" in refused.output


TR = "https://tr.test/api"
ENDPOINTS = f"{TR}/v1/webhook-endpoints"
PARTNER_SECRET = "whsec_" + base64.b64encode(b"the-partner-made-this-secret-32b").decode()
CREDENTIALS = '{"client_id": "gw", "client_secret": "very-secret-value"}'


def _add(app_config, *extra, stdin=CREDENTIALS, name="tr", connector="timerepublik", url=TR):
    args = ["platforms", "add", name, "--connector", connector, "--base-url", url, *extra]
    if stdin is not None:
        args.append("--credentials-stdin")
    return _run(app_config, *args, stdin=stdin)


def _stored(app) -> tuple[int, int]:
    with app.app_context():
        return (
            db.session.scalar(select(func.count()).select_from(Platform)),
            db.session.scalar(
                select(func.count())
                .select_from(WebhookSecret)
                .where(WebhookSecret.revoked_at.is_(None))
            ),
        )


def _active_secrets(app, name="tr") -> list[str]:
    from gateway.federation.platforms import active_secrets, get_platform

    with app.app_context():
        return [row.secret for row in active_secrets(get_platform(name))]


def _partner(mock: responses.RequestsMock, *, status=200, echo=False) -> None:
    """The partner's token endpoint and webhook-endpoint registration."""
    mock.post(
        f"{TR}/oauth/token",
        json={"access_token": "tok", "token_type": "Bearer", "expires_in": 3600},
    )

    def put(request):
        sent = json.loads(request.body)
        secret = sent.get("secret") if echo and sent.get("secret") else PARTNER_SECRET
        body = {"url": sent["url"], "secret": secret, "events": []}
        if status != 200:
            body = {"type": "about:blank", "title": "No", "status": status, "code": "forbidden"}
        return status, {"Content-Type": "application/json"}, json.dumps(body)

    mock.add_callback(responses.PUT, ENDPOINTS, callback=put)


@pytest.mark.parametrize(
    ("connector", "stdin", "options", "says"),
    [
        ("timerepublik", None, (), "client_id and client_secret are required"),
        ("timerepublik", '{"client_id": "gw"}', (), "client_id and client_secret are required"),
        ("komunitin", CREDENTIALS, ("--option", "token_url=https://k.test/token"), "currency"),
        ("timerepublik", CREDENTIALS, ("--option", "read_timeout=-1"), "positive"),
    ],
)
def test_add_refuses_what_the_connector_cannot_use(
    app, app_config, connector, stdin, options, says
):
    with responses.RequestsMock() as mock:  # and it calls no one
        result = _add(app_config, *options, "--no-register", stdin=stdin, connector=connector)
        assert len(mock.calls) == 0
    assert result.exit_code == 2
    assert says in result.output
    assert "cannot use this configuration" in result.output
    assert "very-secret-value" not in result.output
    assert _stored(app) == (0, 0)


def test_add_registers_our_callback_url_and_stores_the_partner_secret(app, app_config):
    with responses.RequestsMock() as mock:
        _partner(mock)
        result = _add(app_config)
        (put,) = [c for c in mock.calls if c.request.method == "PUT"]
    assert result.exit_code == 0, result.output
    assert json.loads(put.request.body)["url"] == "http://127.0.0.1:5000/callbacks/tr"
    assert put.request.headers["Authorization"] == "Bearer tok"
    assert f"secret …{PARTNER_SECRET[-4:]}" in result.output
    assert PARTNER_SECRET not in result.output
    assert _active_secrets(app) == [PARTNER_SECRET]


def test_a_refused_registration_stores_nothing(app, app_config):
    with responses.RequestsMock() as mock:
        _partner(mock, status=403)
        result = _add(app_config)
    assert result.exit_code == 2
    assert "did not register our callback URL" in result.output
    assert _stored(app) == (0, 0)


def test_add_without_registering_warns_when_no_secret_is_held(app, app_config):
    result = _add(app_config, "--no-register")
    assert result.exit_code == 0, result.output
    assert "no webhook secret" in result.output
    assert _stored(app) == (1, 0)


def test_rotate_registers_a_new_secret_and_keeps_the_old_until_revoked(app, app_config):
    assert _add(app_config, "--no-register", "--webhook-secret", SECRET).exit_code == 0
    with responses.RequestsMock() as mock:
        _partner(mock, echo=True)
        rotated = _run(app_config, "platforms", "secrets", "rotate", "tr")
        (put,) = [c for c in mock.calls if c.request.method == "PUT"]
    assert rotated.exit_code == 0, rotated.output
    proposed = json.loads(put.request.body)["secret"]
    assert proposed.startswith("whsec_")
    assert proposed not in rotated.output
    assert _active_secrets(app) == [SECRET, proposed]
    assert f"…{SECRET[-4:]} still active" in rotated.output
    # The first rotation's partner token may still be shared through Redis: no new one needed.
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        _partner(mock, echo=True)
        again = _run(app_config, "platforms", "secrets", "rotate", "tr", "--revoke-old")
    assert again.exit_code == 0, again.output
    (newest,) = _active_secrets(app)
    assert newest not in (SECRET, proposed)


def test_rotate_tells_when_the_platform_kept_its_secret(app, app_config):
    with responses.RequestsMock() as mock:
        _partner(mock)  # answers with its own secret whatever we propose
        assert _add(app_config).exit_code == 0
        kept = _run(app_config, "platforms", "secrets", "rotate", "tr")
    assert kept.exit_code == 2
    assert "kept its secret" in kept.output
    assert _active_secrets(app) == [PARTNER_SECRET]


def test_rotate_refuses_a_connector_that_cannot_register(app, app_config):
    added = _add(
        app_config,
        "--option",
        "currency=TEST",
        "--option",
        "token_url=https://k.test/token",
        connector="komunitin",
        name="k",
        url="https://k.test",
    )
    assert added.exit_code == 0, added.output
    refused = _run(app_config, "platforms", "secrets", "rotate", "k")
    assert refused.exit_code == 2
    assert "cannot register webhooks" in refused.output


def test_add_registers_at_the_sandbox_timebank(app, app_config, tmp_path):
    """Real HTTP: the sandbox implements the contract's PUT /v1/webhook-endpoints."""
    from tests.sandbox.conftest import CLIENT_ID, CLIENT_SECRET, start_sandbox

    sandbox = start_sandbox(tmp_path / "sandbox")
    try:
        credentials = json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
        added = _add(app_config, stdin=credentials, name="sandbox", url=sandbox.url)
        assert added.exit_code == 0, added.output
        (stored,) = _active_secrets(app, "sandbox")
        callback = "http://127.0.0.1:5000/callbacks/sandbox"
        partner = sandbox.connector()
        # Registering the same URL again without a secret answers with the one it holds.
        assert partner.register_webhook_endpoint(callback).secret == stored
        rotated = _run(app_config, "platforms", "secrets", "rotate", "sandbox", "--revoke-old")
        assert rotated.exit_code == 0, rotated.output
        (newest,) = _active_secrets(app, "sandbox")
        assert newest != stored
        assert partner.register_webhook_endpoint(callback).secret == newest
        partner.close()
    finally:
        sandbox.server.stop()
    assert sandbox.contract_errors == []

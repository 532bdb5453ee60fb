"""`gateway platforms ...` on a real database."""

from __future__ import annotations

import base64

from click.testing import CliRunner

from gateway.cli import main

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

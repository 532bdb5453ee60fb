"""`gateway webhooks ...` on a real database."""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import select

from gateway.admin.models import AdminAction
from gateway.cli import main
from gateway.db import db
from gateway.federation.models import Platform
from gateway.webhooks.subscriptions import signing_secrets
from tests.webhooks.conftest import event_rows


def _run(app_config, *args):
    env = {
        "DATABASE_URL": app_config["DATABASE_URL"],
        "GATEWAY_DATA_DIR": app_config["GATEWAY_DATA_DIR"],
        "SECRET_KEY": app_config["SECRET_KEY"],
        "REDIS_URL": app_config["REDIS_URL"],
    }
    return CliRunner().invoke(main, list(args), env=env)


def _add(app_config, *extra):
    return _run(
        app_config,
        "webhooks",
        "add",
        "--url",
        "https://site.example/hooks",
        "--event",
        "transaction.posted",
        "--event",
        "balance.changed",
        *extra,
    )


def test_add_prints_the_secret_once_and_list_never(app, app_config):
    added = _add(app_config, "--description", "the website", "--json")
    assert added.exit_code == 0, added.output
    document = json.loads(added.output)
    assert document["secret"].startswith("whsec_")
    assert document["events"] == ["transaction.posted", "balance.changed"]
    assert document["url"] == "https://site.example/hooks"
    assert document["enabled"] is True
    listed = _run(app_config, "webhooks", "list", "--json")
    assert listed.exit_code == 0, listed.output
    (item,) = json.loads(listed.output)["items"]
    assert item["id"] == document["id"]
    assert "secret" not in item
    assert document["secret"] not in listed.output
    assert item["secrets"][0]["hint"] == document["secret"][-4:]
    text = _run(app_config, "webhooks", "list")
    assert document["id"] in text.output
    assert document["secret"] not in text.output
    with app.app_context():
        (action,) = db.session.scalars(select(AdminAction)).all()
        assert (action.actor, action.action, action.target_id) == (
            "cli",
            "webhook.add",
            document["id"],
        )


def test_plain_add_shows_the_secret(app, app_config):
    added = _add(app_config)
    assert added.exit_code == 0, added.output
    assert "Signing secret (shown once" in added.output
    assert "whsec_" in added.output


def test_refusals(app, app_config):
    unknown = _run(
        app_config, "webhooks", "add", "--url", "https://a.example/", "--event", "member.eaten"
    )
    assert unknown.exit_code == 2
    assert "Unknown event type(s): member.eaten" in unknown.output
    plain_http = _run(
        app_config, "webhooks", "add", "--url", "http://a.example/", "--event", "member.created"
    )
    assert plain_http.exit_code == 2
    assert "must use https" in plain_http.output
    no_event = _run(app_config, "webhooks", "add", "--url", "https://a.example/")
    assert no_event.exit_code == 2
    assert _run(app_config, "webhooks", "disable", "nope").exit_code == 2
    assert (
        "No webhook subscription 'nope'" in _run(app_config, "webhooks", "disable", "nope").output
    )


def test_localhost_over_http_outside_production(app, app_config):
    added = _run(
        app_config,
        "webhooks",
        "add",
        "--url",
        "http://127.0.0.1:8000/hooks",
        "--event",
        "member.created",
    )
    assert added.exit_code == 0, added.output


def test_disable_and_rotate(app, app_config):
    document = json.loads(_add(app_config, "--json").output)
    rotated = _run(
        app_config, "webhooks", "secrets", "rotate", document["id"], "--grace-seconds", "600"
    )
    assert rotated.exit_code == 0, rotated.output
    assert "New signing secret (shown once): whsec_" in rotated.output
    with app.app_context():
        platform = db.session.scalar(select(Platform).where(Platform.name == document["platform"]))
        assert len(signing_secrets(platform.id)) == 2
    disabled = _run(app_config, "webhooks", "disable", document["id"])
    assert disabled.exit_code == 0, disabled.output
    again = _run(app_config, "webhooks", "disable", document["id"])
    assert again.exit_code == 2
    assert "disabled already" in again.output
    (item,) = json.loads(_run(app_config, "webhooks", "list", "--json").output)["items"]
    assert item["enabled"] is False
    with app.app_context():
        assert event_rows(platform.id) == []
        actions = db.session.scalars(select(AdminAction.action)).all()
        assert sorted(actions) == ["webhook.add", "webhook.disable", "webhook.rotate_secret"]


def test_subscriptions_are_no_timebanks(app, app_config):
    document = json.loads(_add(app_config, "--json").output)
    listed = _run(app_config, "platforms", "list")
    assert document["platform"] not in listed.output
    shown = _run(app_config, "platforms", "show", document["platform"])
    assert shown.exit_code == 2
    reconciled = _run(app_config, "reconcile", "--platform", document["platform"])
    assert reconciled.exit_code == 2

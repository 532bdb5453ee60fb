"""`gateway members create|list`."""

from __future__ import annotations

from click.testing import CliRunner

from gateway.cli import main
from gateway.db import db
from gateway.members.models import Member


def _run(app_config, *args, stdin=None):
    env = {
        "DATABASE_URL": app_config["DATABASE_URL"],
        "GATEWAY_DATA_DIR": app_config["GATEWAY_DATA_DIR"],
        "SECRET_KEY": app_config["SECRET_KEY"],
    }
    return CliRunner().invoke(main, list(args), env=env, input=stdin)


def test_create_operator_from_stdin(app, app_config):
    result = _run(
        app_config,
        "members",
        "create",
        "--email",
        "Op@Example.org",
        "--name",
        "Operator",
        "--password-stdin",
        "--admin",
        "--verified",
        stdin="a good long operator password\n",
    )
    assert result.exit_code == 0, result.output
    assert "a good long" not in result.output
    with app.app_context():
        member = db.session.query(Member).filter_by(email="op@example.org").one()
        assert member.is_admin
        assert member.email_verified_at is not None
    listed = _run(app_config, "members", "list", "--admins")
    assert "op@example.org" in listed.output


def test_weak_password_and_taken_email_are_refused(app, app_config):
    weak = _run(
        app_config,
        "members",
        "create",
        "--email",
        "a@example.org",
        "--name",
        "A",
        "--password-stdin",
        stdin="short\n",
    )
    assert weak.exit_code == 2
    assert weak.output.startswith("Error: The password must be at least 12")
    ok = _run(
        app_config,
        "members",
        "create",
        "--email",
        "a@example.org",
        "--name",
        "A",
        "--password-stdin",
        stdin="long enough password here\n",
    )
    assert ok.exit_code == 0
    taken = _run(
        app_config,
        "members",
        "create",
        "--email",
        "a@example.org",
        "--name",
        "A",
        "--password-stdin",
        stdin="long enough password here\n",
    )
    assert taken.exit_code == 2

"""The `gateway` command (also available as `flask --app gateway ...`)."""

from __future__ import annotations

import sys

import click
from flask import Flask

from gateway.auth.cli import clients_group, keys_group
from gateway.commands import fail, with_app
from gateway.config import ConfigError
from gateway.dev_tools import DEV_TOOLS, added_commands, not_installed
from gateway.embedded_redis import EmbeddedRedisError
from gateway.federation.cli import platforms_group
from gateway.members.cli import members_group
from gateway.preflight import StartupError
from gateway.sync.cli import outbox_group, reconcile_command
from gateway.webhooks.cli import webhooks_group


class GatewayGroup(click.Group):
    """Our commands, and those installed distributions add (the development tools' `sandbox`
    and `demo-site`), each loaded only when it is run or listed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Our commands and the added ones, sorted."""
        return sorted({*super().list_commands(ctx), *added_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Ours, else an added one; a missing development tool says how to install it."""
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        entry_point = added_commands().get(cmd_name)
        if entry_point is not None:
            loaded = entry_point.load()
            if not isinstance(loaded, click.Command):
                fail(f"{entry_point.value} (command {cmd_name!r}) is not a click command.")
            return loaded
        if cmd_name in DEV_TOOLS:
            fail(not_installed(cmd_name))
        return None


@click.group(cls=GatewayGroup, help="The Milano Sei l'Altro community gateway.")
@click.version_option(package_name="community-gateway")
def main() -> None:
    """Entry point of the `gateway` command."""


@main.command("run")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port of the gateway.")
@click.option(
    "--sandbox/--no-sandbox",
    default=True,
    show_default=True,
    help="Also run the sandbox timebank (on the next port) as the platform 'sandbox', "
    "if the development tools are installed.",
)
def run_command(host: str, port: int, sandbox: bool) -> None:
    """Migrate, then run web server, worker, scheduler and the development tools (sandbox,
    demo site: when installed) together until Ctrl-C."""
    from gateway.supervisor import run_all

    try:
        sys.exit(run_all(host, port, with_sandbox=sandbox))
    except (ConfigError, EmbeddedRedisError, StartupError) as exc:
        fail(str(exc))


@main.command("web")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--dev", is_flag=True, help="Use werkzeug's development server instead of gunicorn.")
@with_app
def web_command(app: Flask, host: str, port: int, dev: bool) -> None:
    """Serve the gateway over HTTP."""
    if dev:
        app.run(host=host, port=port, threaded=True, use_reloader=False)
        return
    from gateway.web_server import serve

    serve(app, host, port)


@main.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
@click.option("--name", default=None, help="Worker name (default: host and pid).")
@click.option(
    "--fork/--no-fork",
    default=True,
    show_default=True,
    help="Run each job in a forked child (isolation) or in the worker itself (throughput).",
)
@with_app
def worker_command(app: Flask, burst: bool, name: str | None, fork: bool) -> None:
    """Run an RQ worker for the gateway's jobs."""
    from gateway.jobs import bind_process_app, make_worker

    bind_process_app(app)
    make_worker(app, name=name, fork=fork).work(burst=burst, with_scheduler=True)


@main.command("scheduler")
@with_app
def scheduler_command(app: Flask) -> None:
    """Enqueue the periodic jobs (reconciliation, sweeps) on their schedule."""
    from gateway.schedule import build_scheduler

    build_scheduler(app).start()


@main.group("db")
def db_group() -> None:
    """Database schema commands."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
@with_app(needs_redis=False)
def db_upgrade(app: Flask, revision: str) -> None:
    """Apply migrations up to REVISION (default: the head)."""
    from gateway.migrate import current_revisions, upgrade

    upgrade(app.extensions["db"].engine, revision)
    click.echo(f"Database at {', '.join(sorted(current_revisions(app.extensions['db'].engine)))}.")


@db_group.command("current")
@with_app(needs_redis=False)
def db_current(app: Flask) -> None:
    """Show the database's revision and whether it is up to date."""
    from gateway.migrate import current_revisions, head_revisions

    engine = app.extensions["db"].engine
    current, heads = current_revisions(engine), head_revisions(engine)
    state = "up to date" if current == heads else f"behind (heads: {', '.join(sorted(heads))})"
    click.echo(f"{', '.join(sorted(current)) or 'empty'}: {state}")


@db_group.command("revision")
@click.option("-m", "--message", required=True)
@click.option("--rev-id", default=None, help="Revision id: the next number, e.g. 0009.")
@with_app(needs_redis=False)
def db_revision(app: Flask, message: str, rev_id: str | None) -> None:
    """Autogenerate a migration from the models against an up-to-date database (developers)."""
    from gateway.migrate import revision

    revision(app.extensions["db"].engine, message, rev_id=rev_id)


main.add_command(platforms_group)
main.add_command(clients_group)
main.add_command(keys_group)
main.add_command(members_group)
main.add_command(outbox_group)
main.add_command(reconcile_command)
main.add_command(webhooks_group)


def register_flask_commands(app: Flask) -> None:
    """Offer the same commands under `flask --app gateway`."""
    for command in (db_group, worker_command, scheduler_command):
        app.cli.add_command(command)

"""`gateway demo-site`: serve the demo relying party (``gateway run`` starts it too)."""

from __future__ import annotations

import os

import click
from werkzeug.serving import make_server

from gateway.commands import fail
from gateway_sandbox.server import is_loopback

SECRET_VARIABLE = "DEMO_SITE_CLIENT_SECRET"  # noqa: S105 - the variable's name


@click.command("demo-site")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5002, show_default=True, type=int)
@click.option("--gateway-url", default=None, help="Default: GATEWAY_BASE_URL.")
@click.option("--client-id", default="demo-site", show_default=True)
def demo_site_command(host: str, port: int, gateway_url: str | None, client_id: str) -> None:
    """A small site that logs in through the gateway and shows the ID token's claims.

    The client secret comes from DEMO_SITE_CLIENT_SECRET (never a command-line argument,
    which other users of the machine could read).
    """
    from gateway_demo_site.app import create_demo_app

    secret = os.environ.get(SECRET_VARIABLE)
    if not secret:
        fail(f"Set {SECRET_VARIABLE} to the demo client's secret (`gateway clients create`).")
    gateway_url = gateway_url or os.environ.get("GATEWAY_BASE_URL", "http://127.0.0.1:5000")
    if not is_loopback(host):
        click.echo("Warning: the demo site is a development tool; serving it beyond loopback.")
    public_url = f"http://{host}:{port}"
    app = create_demo_app(gateway_url, client_id, secret, public_url)
    server = make_server(host, port, app, threaded=True)
    click.echo(f"Demo site on {public_url}, signing in through {gateway_url}. Ctrl-C stops it.")
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()

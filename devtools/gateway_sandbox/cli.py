"""`gateway sandbox`: the sandbox timebank in the foreground (``gateway run`` starts it too).

The command reaches the `gateway` command through the ``gateway.commands`` entry point of this
distribution, so it exists only where the development tools are installed.
"""

from __future__ import annotations

import click

from gateway.commands import fail
from gateway.config import ConfigError


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address (keep it loopback).")
@click.option("--port", default=5001, show_default=True, type=int, help="Port of the sandbox.")
@click.option(
    "--data-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Where its SQLite file lives (default: $GATEWAY_DATA_DIR/sandbox).",
)
def sandbox_command(host: str, port: int, data_dir: str | None) -> None:
    """Run the sandbox timebank (the partner API, for development) until Ctrl-C."""
    from gateway_sandbox.server import serve

    try:
        serve(host, port, {"SANDBOX_DATA_DIR": data_dir} if data_dir else None)
    except (ConfigError, OSError) as exc:
        fail(str(exc))

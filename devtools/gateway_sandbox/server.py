"""Serving the sandbox: a real HTTP server in a thread (tests) or in the foreground (CLI)."""

from __future__ import annotations

import ipaddress
import logging
import threading
from types import TracebackType
from typing import Any

from flask import Flask
from werkzeug.serving import make_server

__all__ = ["SandboxServer", "is_loopback", "serve"]

log = logging.getLogger(__name__)
# Requests in progress at once (each may sleep for the configured latency); more wait their turn.
SERVE_THREADS = 32


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    """``host`` as it appears in a URL (an IPv6 address in brackets)."""
    return f"[{host}]" if ":" in host else host


class SandboxServer:
    """The sandbox app on werkzeug's threaded server, plus its webhook dispatcher.

    ``port=0`` takes a free ephemeral port; ``url`` says which.
    """

    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.httpd = make_server(host, port, app, threaded=True)
        self.host = host
        self.port = self.httpd.server_port
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://{_url_host(self.host)}:{self.port}"

    def start(self) -> SandboxServer:
        """Serve from a daemon thread and start delivering webhooks."""
        self._thread = threading.Thread(
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sandbox-http",
            daemon=True,
        )
        self._thread.start()
        self.app.extensions["sandbox"].dispatcher.start()
        return self

    def stop(self) -> None:
        """Stop serving and delivering (each within a few seconds)."""
        self.app.extensions["sandbox"].dispatcher.stop()
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(5.0)
        self.app.extensions["sandbox"].store.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def serve(host: str, port: int, config: dict[str, Any] | None = None) -> None:
    """Run the sandbox in the foreground until Ctrl-C, on gunicorn.

    One process (its fault counters and webhook queue live in memory) with many threads (each
    request may sleep for its latency), keeping connections alive as partners' servers do. A
    simulated partner that costs little CPU leaves the machine to what a benchmark measures.
    """
    from gateway.web_server import run_gunicorn
    from gateway_sandbox.app import create_sandbox_app

    app = create_sandbox_app(config)
    if not is_loopback(host):
        log.warning("the sandbox has no real security; serving it on %s exposes it", host)
    sandbox = app.extensions["sandbox"]
    sandbox.store.close()  # no SQLite connection may cross the fork into the worker
    shown = _url_host(host)
    print(
        f"Sandbox timebank on http://{shown}:{port} (client {app.config['SANDBOX_CLIENT_ID']}, "
        f"clearing wallet {app.config['SANDBOX_CLEARING_WALLET_ID']}, "
        f"data in {app.config['SANDBOX_DATA_DIR']}). Ctrl-C stops it.",
        flush=True,
    )

    def started(_worker: Any) -> None:
        sandbox.dispatcher.start()

    def stopping(_server: Any, _worker: Any) -> None:
        sandbox.dispatcher.stop()
        sandbox.store.close()

    run_gunicorn(
        app,
        {
            "bind": f"{shown}:{port}",
            "workers": 1,
            "worker_class": "gthread",
            "threads": SERVE_THREADS,
            "timeout": 60,
            "graceful_timeout": 5,
            "loglevel": "warning",
            "post_worker_init": started,
            "worker_exit": stopping,
        },
    )

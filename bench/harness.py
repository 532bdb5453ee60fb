"""Shared benchmark plumbing: a gunicorn server on loopback, a load loop, and ratio reports.

Every figure is reported as a ratio to a baseline measured in the same run on the same server
(a bare Flask endpoint, a raw Redis or SQL operation), so machines of different speed compare.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Rate:
    """Operations completed in a timed window."""

    operations: int
    seconds: float
    errors: int = 0
    # Server CPU per successful operation, where the server's processes can be read.
    cpu_ms_per_op: float | None = None

    @property
    def per_second(self) -> float:
        """Throughput."""
        return self.operations / self.seconds if self.seconds else 0.0


def measure(
    operation: Callable[[int], None],
    seconds: float = 5.0,
    threads: int = 8,
    cpu: Callable[[], float | None] | None = None,
) -> Rate:
    """Run ``operation(i)`` from ``threads`` threads for ``seconds``; count successes and errors.

    ``cpu`` reads the server's CPU seconds; with it, the rate says what each operation cost.
    """
    counter = iter(range(10**9))
    lock = threading.Lock()
    done = [0, 0]
    deadline = time.monotonic() + seconds

    def loop() -> None:
        while time.monotonic() < deadline:
            with lock:
                i = next(counter)
            try:
                operation(i)
            except Exception:  # noqa: BLE001 - counted, the benchmark reports errors
                with lock:
                    done[1] += 1
            else:
                with lock:
                    done[0] += 1

    cpu_before = cpu() if cpu else None
    start = time.monotonic()
    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - start
    cpu_after = cpu() if cpu else None
    per_op = None
    if cpu_before is not None and cpu_after is not None and done[0]:
        per_op = (cpu_after - cpu_before) * 1000 / done[0]
    return Rate(done[0], elapsed, done[1], per_op)


def measure_interleaved(
    operations: dict[str, Callable[[int], None]],
    seconds: float = 5.0,
    threads: int = 8,
    cpu: Callable[[], float | None] | None = None,
    rounds: int = 5,
) -> dict[str, Rate]:
    """``measure`` each operation for ``seconds`` in all, taking turns in ``rounds`` slices.

    On a shared machine whose speed drifts over tens of seconds, measuring one operation after
    another skews their ratios by the drift; taking turns spreads it over all of them alike.
    """
    slices: dict[str, list[Rate]] = {name: [] for name in operations}
    for _ in range(rounds):
        for name, operation in operations.items():
            slices[name].append(measure(operation, seconds / rounds, threads, cpu))
    return {name: _sum(rates) for name, rates in slices.items()}


def _sum(rates: list[Rate]) -> Rate:
    operations = sum(rate.operations for rate in rates)
    cpu_ms = [rate.cpu_ms_per_op * rate.operations for rate in rates if rate.cpu_ms_per_op]
    return Rate(
        operations,
        sum(rate.seconds for rate in rates),
        sum(rate.errors for rate in rates),
        sum(cpu_ms) / operations if operations and len(cpu_ms) == len(rates) else None,
    )


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


def report(title: str, rows: list[tuple[str, Rate]], baseline: Rate) -> None:
    """Print each rate, its ratio to the baseline and, when known, its server CPU per operation."""

    def cpu(rate: Rate) -> str:
        return f"   {rate.cpu_ms_per_op:5.2f} ms CPU/op" if rate.cpu_ms_per_op is not None else ""

    print(f"\n{title}")
    print(f"  {'baseline':<40} {baseline.per_second:10.1f} ops/s   1.00x{cpu(baseline)}")
    for name, rate in rows:
        ratio = rate.per_second / baseline.per_second if baseline.per_second else 0.0
        errors = f"  ({rate.errors} errors)" if rate.errors else ""
        print(f"  {name:<40} {rate.per_second:10.1f} ops/s   {ratio:.2f}x{cpu(rate)}{errors}")


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

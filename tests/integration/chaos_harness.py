"""What the chaos drill runs on: the gateway's processes, killed whole, and its timings.

Each process is a real ``gateway`` command (web, worker, scheduler) on the test's database and
Redis, with its output kept in a log file the test shows when it fails. A kill takes a process's
whole tree: RQ's work horse runs in a session of its own, so killing a worker's process group
would leave it running the job it holds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

TIMINGS_VARIABLE = "GATEWAY_CHAOS_TIMINGS"


@dataclass(frozen=True)
class Timings:
    """How fast the gateway and the partner retry, sweep and reconcile during a drill."""

    name: str
    gateway: dict[str, str]  # settings of the gateway's processes
    webhook_max_attempts: int
    webhook_retry_base_seconds: float
    webhook_max_backoff_seconds: float
    # How much longer than the partner's webhook retries the callback receiver stays down.
    outage_margin_seconds: float
    # How long the faults may go on waiting for pushes to die (to reverse them then).
    dead_push_wait_seconds: float


# CI's form: every interval scaled down so that the drill fits its budget, and fewer attempts
# per row, so that dead letters (and their revival) happen within its minute of faults as they
# do within hours of a real partner's.
COMPRESSED = Timings(
    name="compressed",
    gateway={
        "SYNC_MAX_ATTEMPTS": "2",
        "SYNC_BACKOFF_BASE_SECONDS": "0.5",
        "SYNC_BACKOFF_CAP_SECONDS": "4",
        "SYNC_LEASE_SECONDS": "5",
        "SYNC_CIRCUIT_COOLDOWN_SECONDS": "2",
        "SYNC_SWEEP_INTERVAL_SECONDS": "2",
        "CALLBACK_SWEEP_INTERVAL_SECONDS": "2",
        "CALLBACK_BACKOFF_BASE_SECONDS": "0.5",
        "CALLBACK_BACKOFF_CAP_SECONDS": "4",
        "RECONCILE_INTERVAL_SECONDS": "10",
    },
    webhook_max_attempts=4,
    webhook_retry_base_seconds=0.25,
    webhook_max_backoff_seconds=1.0,
    outage_margin_seconds=2.0,
    dead_push_wait_seconds=10.0,
)
# A manual drill with production's retry, lease and sweep timings and the sandbox's own webhook
# schedule; reconciliation every two minutes, so that the sides can agree within five.
REALISTIC = Timings(
    name="realistic",
    gateway={"RECONCILE_INTERVAL_SECONDS": "120"},
    webhook_max_attempts=8,
    webhook_retry_base_seconds=1.0,
    webhook_max_backoff_seconds=300.0,
    outage_margin_seconds=10.0,
    dead_push_wait_seconds=120.0,
)


def chosen_timings(environ: dict[str, str] | None = None) -> Timings:
    """The timings ``GATEWAY_CHAOS_TIMINGS`` names: ``compressed`` (default) or ``realistic``."""
    environ = dict(os.environ if environ is None else environ)
    name = environ.get(TIMINGS_VARIABLE) or COMPRESSED.name
    for timings in (COMPRESSED, REALISTIC):
        if timings.name == name:
            return timings
    raise ValueError(f"{TIMINGS_VARIABLE} is compressed or realistic, not {name!r}")


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (in parentheses) may hold spaces: the fields after it are fixed.
    return int(stat.rsplit(")", 1)[1].split()[1])


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process descended from it, parents first."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _parent_of(int(entry))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop(0)
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()  # state, ppid, pgrp, session, ...


def is_running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is not)."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def work_horses(worker_pid: int) -> list[int]:
    """The live work horses under an RQ worker: RQ puts each in a process group of its own."""
    horses = []
    for pid in process_tree(worker_pid)[1:]:
        fields = _stat_fields(pid)
        if fields is not None and fields[0] != "Z" and int(fields[2]) == pid:
            horses.append(pid)
    return horses


def kill_worker_tree(worker_pid: int, timeout: float = 15.0) -> tuple[list[int], list[int]]:
    """Kill an RQ worker with all it forked, once a work horse is running a job.

    The worker is stopped while its tree is looked at, so that the horse found is still at work
    when it is killed. Returns the pids killed and which of them were work horses.
    """
    deadline = time.monotonic() + timeout
    while True:
        _signal(worker_pid, signal.SIGSTOP)
        horses = work_horses(worker_pid)
        if horses or time.monotonic() > deadline:
            break
        _signal(worker_pid, signal.SIGCONT)
        time.sleep(0.01)
    return kill_tree(worker_pid), horses


def kill_tree(pid: int) -> list[int]:
    """SIGKILL ``pid`` and all its descendants; returns the pids killed.

    Each is stopped first, so that none can fork or hand work on while the others die.
    """
    tree = process_tree(pid)
    for member in tree:
        _signal(member, signal.SIGSTOP)
    tree = process_tree(pid)  # anything forked before the stop took
    for member in tree:
        _signal(member, signal.SIGKILL)
    return tree


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def wait_gone(pids: list[int], timeout: float = 10.0) -> None:
    """Wait until every pid is dead; AssertionError naming those still alive."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if is_running(pid)]
        if not alive:
            return
        time.sleep(0.05)
    raise AssertionError(f"processes survived SIGKILL: {alive}")


@dataclass
class GatewayProcesses:
    """The gateway's own processes in a drill, started on the test's settings."""

    settings: dict[str, str]
    log_dir: Path
    started: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    def start(self, name: str, *args: str) -> subprocess.Popen:
        """Run ``gateway <args>`` in a session of its own, its output in ``<name>.log``."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", *args],
            env={**os.environ, **self.settings},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.started.append((name, process))
        return process

    def worker(self, name: str) -> subprocess.Popen:
        """An RQ worker (forking a work horse for each job)."""
        return self.start(name, "worker", "--name", name)

    def web(self, port: int, timeout: float = 30.0) -> subprocess.Popen:
        """The web server (the callback receiver) on ``port``, once it answers."""
        process = self.start(f"web-{port}", "web", "--host", "127.0.0.1", "--port", str(port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"the web process exited: {self.tail('web-' + str(port))}")
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                    return process
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the web process did not answer: {self.tail('web-' + str(port))}")

    def tail(self, name: str, lines: int = 40) -> str:
        """The last lines a process wrote."""
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def logs(self, lines: int = 25) -> str:
        """The last lines of every process's log, for a failure message."""
        names = sorted({name for name, _ in self.started})
        return "\n".join(f"--- {name}\n{self.tail(name, lines)}" for name in names)

    def stop_all(self) -> None:
        """Stop every process still running (and whatever it forked)."""
        for _name, process in self.started:
            if process.poll() is None:
                for pid in process_tree(process.pid):
                    _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _name, process in self.started:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                kill_tree(process.pid)
                process.wait(timeout=5)

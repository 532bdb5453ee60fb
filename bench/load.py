"""Load generators for the HTTP benchmarks: wrk when it is installed, else a Python client.

On a two-core machine the load generator shares the cores with the server, so what it costs per
request is taken from the server. wrk (an event loop in C, driven by the Lua scripts beside this
file) costs a few hundredths of a millisecond per request; the Python client (threads of
``requests``) costs about as much as the server's bare endpoint, so it caps that endpoint and
flatters every ratio to it. The client is the fallback only, and every report names the one that
measured. Each run also reads the server's CPU per operation, which depends little on the load
generator or on other work on the machine.

Every operation is prepared before it is sent: a POST spends an ``Idempotency-Key`` and a
callback its webhook id, so sending one twice would measure a replay. ``Workload.prepare(n)``
makes n operations; a run that uses them all fails and says so (prepare more).
"""

from __future__ import annotations

import base64
import re
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

BENCH = Path(__file__).resolve().parent
UNIT_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class Rate:
    """Operations completed in a timed window, and what each cost."""

    operations: int
    seconds: float
    failed: int = 0
    exhausted: bool = False
    server_cpu_ms: float | None = None  # the server's CPU per successful operation
    client_cpu_ms: float | None = None  # the load generator's CPU per successful operation
    p50_ms: float | None = None
    p99_ms: float | None = None
    first_failure: str = ""

    @property
    def per_second(self) -> float:
        """Throughput."""
        return self.operations / self.seconds if self.seconds else 0.0


def combined(rates: Sequence[Rate]) -> Rate:
    """Several slices of one measurement as one rate (CPU figures weighted by operations)."""
    operations = sum(rate.operations for rate in rates)

    def weighted(value: Callable[[Rate], float | None]) -> float | None:
        values = [(value(rate), rate.operations) for rate in rates]
        if not operations or any(v is None for v, _ in values):
            return None
        return sum(v * n for v, n in values if v is not None) / operations

    return Rate(
        operations,
        sum(rate.seconds for rate in rates),
        sum(rate.failed for rate in rates),
        any(rate.exhausted for rate in rates),
        weighted(lambda r: r.server_cpu_ms),
        weighted(lambda r: r.client_cpu_ms),
        weighted(lambda r: r.p50_ms),
        max((r.p99_ms for r in rates if r.p99_ms is not None), default=None),
        next((rate.first_failure for rate in rates if rate.first_failure), ""),
    )


# -- workloads ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One HTTP request, prepared."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""

    def line(self) -> str:
        """The request as a line of ``replay.lua``'s input."""
        headers = UNIT_SEPARATOR.join(f"{name}: {value}" for name, value in self.headers.items())
        text = "\t".join((self.method, self.path, headers, self.body))
        if "\n" in text or text.count("\t") != 3:
            raise ValueError(f"a request that cannot be one line of replay.lua: {text[:80]!r}")
        return text


class Workload(ABC):
    """What one line of a benchmark's report measures."""

    name: str
    script: str  # the wrk script under bench/
    cycle = False  # its operations may be sent again (they spend nothing)
    connections_per_thread: int | None = None  # fixed by the script (None: any)

    @abstractmethod
    def prepare(self, count: int) -> list[str]:
        """``count`` operations, as lines of the script's input."""

    def script_arguments(self) -> list[str]:
        """What the script takes after its input file (the thread count comes last)."""
        return []

    @abstractmethod
    def send(self, session: requests.Session, base: str, line: str) -> None:
        """One operation by the Python client; raises when its answer is not the expected one."""


class Replay(Workload):
    """Requests sent once each (``cycle``: over and over), all expecting one status."""

    script = "replay.lua"

    def __init__(
        self,
        name: str,
        make: Callable[[int], Request],
        expect: int,
        *,
        cycle: bool = False,
    ) -> None:
        self.name, self.make, self.expect, self.cycle = name, make, expect, cycle

    def prepare(self, count: int) -> list[str]:
        return [self.make(i).line() for i in range(1 if self.cycle else count)]

    def script_arguments(self) -> list[str]:
        return [str(self.expect), "cycle" if self.cycle else "once"]

    def send(self, session: requests.Session, base: str, line: str) -> None:
        method, path, headers, body = line.split("\t")
        fields = dict(h.split(": ", 1) for h in headers.split(UNIT_SEPARATOR) if h)
        response = session.request(
            method, base + path, headers=fields, data=body.encode() or None, timeout=10
        )
        if response.status_code != self.expect:
            raise RuntimeError(f"{response.status_code} {response.text[:300]}")


@dataclass(frozen=True)
class LoginClient:
    """The relying party of the login round trips, and its members' password."""

    client_id: str
    client_secret: str
    redirect_uri: str
    emails: Sequence[str]
    password: str


class LoginRoundTrip(Workload):
    """A browser logs in through the authorization endpoint; its relying party redeems the code."""

    script = "login.lua"
    connections_per_thread = 1

    def __init__(self, name: str, client: LoginClient, pkce: Callable[[], tuple[str, str]]) -> None:
        self.name, self.client, self.pkce = name, client, pkce

    def prepare(self, count: int) -> list[str]:
        lines = []
        for i in range(count):
            verifier, challenge = self.pkce()
            query = urlencode(
                {
                    "response_type": "code",
                    "client_id": self.client.client_id,
                    "redirect_uri": self.client.redirect_uri,
                    "scope": "openid profile email",
                    "state": str(i),
                    "nonce": f"n{i}-{time.monotonic_ns()}",
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                }
            )
            email = self.client.emails[i % len(self.client.emails)]
            login = urlencode({"email": email, "password": self.client.password})
            token = urlencode(
                {
                    "grant_type": "authorization_code",
                    "redirect_uri": self.client.redirect_uri,
                    "code_verifier": verifier,
                }
            )
            lines.append(f"{query}\t{login}\t{token}")
        return lines

    def script_arguments(self) -> list[str]:
        pair = f"{self.client.client_id}:{self.client.client_secret}".encode()
        return [f"Basic {base64.b64encode(pair).decode()}"]

    def send(self, session: requests.Session, base: str, line: str) -> None:
        query, login, token = line.split("\t")
        browser = requests.Session()
        r = browser.get(f"{base}/oauth/authorize?{query}", allow_redirects=False, timeout=10)
        login_url = base + r.headers["Location"]
        page = browser.get(login_url, timeout=10)
        match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        if match is None:
            raise RuntimeError(f"login page {page.status_code} without a CSRF token")
        form = {k: v[0] for k, v in parse_qs(login).items()} | {"csrf_token": match.group(1)}
        r = browser.post(login_url, data=form, allow_redirects=False, timeout=10)
        r = browser.get(base + r.headers["Location"], allow_redirects=False, timeout=10)
        code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
        exchange = {k: v[0] for k, v in parse_qs(token).items()} | {"code": code}
        auth = (self.client.client_id, self.client.client_secret)
        r = session.post(f"{base}/oauth/token", data=exchange, auth=auth, timeout=10)
        if r.status_code != 200 or "id_token" not in r.json():
            raise RuntimeError(f"token {r.status_code} {r.text[:300]}")


# -- load generators ----------------------------------------------------------------------------


class Wrk:
    """wrk with a Lua script: one event loop thread for replays, one per connection for chains."""

    def __init__(self, executable: str, connections: int) -> None:
        self.executable, self.connections = executable, connections
        version = subprocess.run(  # noqa: S603 - the wrk found on PATH, fixed arguments
            [executable, "--version"], capture_output=True, text=True, check=False
        )
        words = (version.stdout + version.stderr).split()
        self.version = words[1] if len(words) > 1 else "(version unknown)"

    @property
    def label(self) -> str:
        """The load generator, for the report."""
        return f"wrk {self.version}, {self.connections} connections, Lua scripts"

    def run(
        self,
        base: str,
        workload: Workload,
        lines: list[str],
        seconds: int,
        server_cpu: Callable[[], float | None],
    ) -> Rate:
        """Send ``lines`` of ``workload`` for ``seconds``; the rate and what it cost."""
        threads = self.connections if workload.connections_per_thread else 1
        with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="bench-") as prepared:
            prepared.write("\n".join(lines) + "\n")
            prepared.flush()
            command = [
                self.executable,
                f"--threads={threads}",
                f"--connections={self.connections}",
                f"--duration={seconds}s",
                "--timeout=10s",
                f"--script={BENCH / workload.script}",
                base,
                "--",
                prepared.name,
                *workload.script_arguments(),
                str(threads),
            ]
            cpu_before, client_before = server_cpu(), _children_cpu()
            done = subprocess.run(  # noqa: S603 - fixed arguments, loopback only
                command, capture_output=True, text=True, check=False
            )
            cpu_after, client_after = server_cpu(), _children_cpu()
        result = re.search(r"^BENCH-RESULT (.*)$", done.stdout, re.MULTILINE)
        if done.returncode != 0 or result is None:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
        figures = {k: int(v) for k, v in (pair.split("=") for pair in result.group(1).split())}
        failure = re.search(r"^BENCH-FIRST-FAILURE ?(.*)$", done.stdout, re.MULTILINE)
        operations = figures["operations"]
        return Rate(
            operations,
            figures["microseconds"] / 1e6,
            figures["failed"],
            figures["exhausted"] > 0,
            _per_operation(cpu_before, cpu_after, operations),
            _per_operation(client_before, client_after, operations),
            figures["p50_us"] / 1000 or None,
            figures["p99_us"] / 1000 or None,
            failure.group(1).strip() if failure else "",
        )


class PythonClient:
    """Threads of ``requests`` sessions, on the same cores as the server: the fallback."""

    def __init__(self, threads: int, reason: str) -> None:
        self.threads, self.reason = threads, reason

    @property
    def label(self) -> str:
        """The load generator, for the report."""
        return (
            f"the Python client ({self.threads} threads of requests; {self.reason}): it shares "
            "the cores with the server and caps the fast endpoints, so ratios are flattered"
        )

    def run(
        self,
        base: str,
        workload: Workload,
        lines: list[str],
        seconds: int,
        server_cpu: Callable[[], float | None],
    ) -> Rate:
        """Send ``lines`` of ``workload`` for ``seconds``; the rate and what it cost."""
        session = requests.Session()
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=self.threads))
        lock = threading.Lock()
        state = {"next": 0, "done": 0, "failed": 0, "exhausted": False, "first": ""}
        latencies: list[float] = []
        deadline = time.monotonic() + seconds

        def loop() -> None:
            while time.monotonic() < deadline:
                with lock:
                    i = state["next"]
                    state["next"] += 1
                if i >= len(lines) and not workload.cycle:
                    with lock:
                        state["exhausted"] = True
                    return
                started = time.monotonic()
                try:
                    workload.send(session, base, lines[i % len(lines)])
                except Exception as exc:  # noqa: BLE001 - counted; the report says the first
                    with lock:
                        state["failed"] += 1
                        state["first"] = state["first"] or str(exc)[:300]
                else:
                    with lock:
                        state["done"] += 1
                        latencies.append(time.monotonic() - started)

        cpu_before, client_before = server_cpu(), time.process_time()
        start = time.monotonic()
        workers = [threading.Thread(target=loop) for _ in range(self.threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.monotonic() - start
        cpu_after, client_after = server_cpu(), time.process_time()
        operations = int(state["done"])
        latencies.sort()

        def percentile(p: float) -> float | None:
            return latencies[int(p * (len(latencies) - 1))] * 1000 if latencies else None

        return Rate(
            operations,
            elapsed,
            int(state["failed"]),
            bool(state["exhausted"]),
            _per_operation(cpu_before, cpu_after, operations),
            _per_operation(client_before, client_after, operations),
            percentile(0.5),
            percentile(0.99),
            str(state["first"]),
        )


LoadGenerator = Wrk | PythonClient


def load_generator(choice: str, connections: int) -> LoadGenerator:
    """``wrk`` when asked for and found (``auto``: when found), else the Python client."""
    executable = shutil.which("wrk")
    if choice == "python":
        return PythonClient(connections, "asked for")
    if executable is None:
        if choice == "wrk":
            raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
        return PythonClient(connections, "wrk was not found: apt-get install wrk")
    return Wrk(executable, connections)


def measure(
    generator: LoadGenerator,
    base: str,
    workloads: Sequence[Workload],
    seconds: int,
    server_cpu: Callable[[], float | None],
    *,
    rounds: int = 5,
    ceiling_per_second: float = 10_000.0,
) -> dict[str, Rate]:
    """Measure each workload for ``seconds`` in all, taking turns in ``rounds`` slices.

    On a shared machine whose speed drifts over tens of seconds, measuring one workload after
    another skews their ratios by the drift; taking turns spreads it over all of them alike.
    Each slice gets operations enough for ``ceiling_per_second``; callbacks are signed just
    before their slice, well inside their five minutes of validity.
    """
    slice_seconds = max(1, round(seconds / rounds))
    slices: dict[str, list[Rate]] = {workload.name: [] for workload in workloads}
    for _ in range(rounds):
        for workload in workloads:
            lines = workload.prepare(int(ceiling_per_second * slice_seconds) + 100)
            rate = generator.run(base, workload, lines, slice_seconds, server_cpu)
            slices[workload.name].append(rate)
    return {name: combined(rates) for name, rates in slices.items()}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _per_operation(before: float | None, after: float | None, operations: int) -> float | None:
    if before is None or after is None or not operations:
        return None
    return (after - before) * 1000 / operations


def report(
    title: str,
    generator: LoadGenerator,
    rates: dict[str, Rate],
    baseline: str,
) -> None:
    """Print each rate, its ratio to the baseline, its latency and CPU per operation."""

    def ms(value: float | None) -> str:
        return f"{value:7.2f}" if value is not None else "      -"

    base_rate = rates[baseline].per_second
    print(f"\n{title}\nmeasured by {generator.label}")
    print(
        f"  {'':<44} {'ops/s':>8} {'ratio':>6}  {'p50 ms':>7} {'p99 ms':>7}"
        f"  {'server CPU ms/op':>16}  {'client CPU ms/op':>16}"
    )
    for name, rate in rates.items():
        ratio = rate.per_second / base_rate if base_rate else 0.0
        failed = f"  ({rate.failed} failed)" if rate.failed else ""
        print(
            f"  {name:<44} {rate.per_second:8.1f} {ratio:6.3f}x  {ms(rate.p50_ms)} "
            f"{ms(rate.p99_ms)}  {ms(rate.server_cpu_ms):>16}  {ms(rate.client_cpu_ms):>16}"
            f"{failed}"
        )


def check(rates: dict[str, Rate]) -> None:
    """Stop with the first failure's answer when any operation failed or ran out."""
    for name, rate in rates.items():
        if rate.exhausted:
            raise SystemExit(f"{name}: the prepared operations ran out; prepare more")
        if rate.failed:
            raise SystemExit(f"{name}: {rate.failed} failed; the first: {rate.first_failure}")

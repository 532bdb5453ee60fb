"""Sync throughput against the sandbox timebank at a fixed latency, as a ratio of the ideal.

With N workers and a platform that answers every write after L seconds, no engine can deliver
more than N / L transfers a second: that bound is the baseline. The run registers members,
then posts transfers between them in the ledger and times how long N real `gateway worker`
processes take to deliver every push row.

    python -m bench.bench_sync [--workers 4] [--transfers 400] [--latency-ms 20]

BENCH_DATABASE_URL selects the database server (default: a SQLite file; on PostgreSQL the run
creates a database of its own and drops it after); REDIS_URL a Redis (default: an embedded one).
Only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from rq.registry import StartedJobRegistry
from sqlalchemy import func, select

from bench.harness import LOOPBACK, free_port, scratch_database
from connectors.interface import PlatformConfig, TransferData
from connectors.timerepublik import TimeRepublikConnector
from gateway import create_app, embedded_redis
from gateway.db import db
from gateway.devsetup import SANDBOX_CREDENTIALS
from gateway.federation.models import Platform, PlatformLink
from gateway.ledger import services as ledger
from gateway.members.models import Member
from gateway.migrate import upgrade
from gateway.redis_client import get_queue
from gateway.sync.dispatch import ensure_drains
from gateway.sync.models import OutboxItem
from gateway.sync.outbox import record_effect


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "gateway", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).ok:
                return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def _drain(kind: str, expected: int, timeout: float, since: float | None = None) -> float:
    """Seconds (from ``since``, or now) until ``expected`` rows of ``kind`` succeeded."""
    start = time.monotonic() if since is None else since
    while time.monotonic() - start < timeout:
        db.session.rollback()
        done = db.session.scalar(
            select(func.count())
            .select_from(OutboxItem)
            .where(OutboxItem.kind == kind, OutboxItem.state == "succeeded")
        )
        dead = db.session.scalar(
            select(func.count()).select_from(OutboxItem).where(OutboxItem.state == "dead")
        )
        if dead:
            raise RuntimeError(f"{dead} outbox row(s) died during the benchmark")
        if done >= expected:
            return time.monotonic() - start
        time.sleep(0.02)
    raise RuntimeError(f"{kind}: not drained within {timeout:.0f} s")


def _wait_idle(timeout: float = 60.0) -> None:
    """Wait until no job runs: a drain still busy from the registrations would deliver the
    transfers while they are posted, outside the timing."""
    registry = StartedJobRegistry(queue=get_queue())
    deadline = time.monotonic() + timeout
    while registry.count:
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not go idle")
        time.sleep(0.05)


def _check_nothing_delivered(transfers: int) -> None:
    """Every push row still waits: the timed phase will deliver all of them."""
    db.session.rollback()
    waiting = db.session.scalar(
        select(func.count())
        .select_from(OutboxItem)
        .where(OutboxItem.kind == "push_transfer", OutboxItem.state == "pending")
    )
    if waiting != transfers:
        raise RuntimeError(f"{transfers - waiting} push row(s) left before the timing started")


def _raw_calls(sandbox: str, wallets: list[str], threads: int, transfers: int) -> float:
    """Seconds ``threads`` threads take to make ``transfers`` transfers with the connector alone.

    No outbox, no jobs, no database: what the HTTP client and the sandbox cost on this machine.
    The engine cannot beat it; the gap between the two is the engine's own cost.
    """
    connector = TimeRepublikConnector(
        PlatformConfig(name="raw", base_url=sandbox, credentials=SANDBOX_CREDENTIALS)
    )
    connector.get_balance(wallets[0])  # the token is fetched outside the timing

    def make(n: int) -> None:
        for i in range(n, transfers, threads):
            reference = f"raw-{uuid.uuid4().hex}"
            connector.create_transfer(
                TransferData(
                    payer_wallet_id=wallets[i % len(wallets)],
                    payee_wallet_id=wallets[(i + 1) % len(wallets)],
                    minutes=1,
                    description="bench",
                    external_reference=reference,
                ),
                reference,
            )

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(make, range(threads)))
    return time.monotonic() - started


def run(workers: int, transfers: int, latency_ms: int, members: int = 20) -> float:
    """Run the benchmark; print and return throughput / bound."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp,
        scratch_database(
            os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{Path(tmp) / 'gw.db'}"
        ) as database_url,
    ):
        data = Path(tmp)
        own_redis = None
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            own_redis = embedded_redis.start(data / "r")
            redis_url = own_redis.url
        env = {
            **os.environ,
            "GATEWAY_DATA_DIR": str(data),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": "bench-secret-key-0123456789abcdef0123456789",
            "GATEWAY_QUEUE": "bench-sync",
            "LOG_LEVEL": "WARNING",
            "SANDBOX_LATENCY_MS": str(latency_ms),
        }
        app = create_app(
            {k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")}
            | {"GATEWAY_DATA_DIR": str(data), "QUEUE_NAME": "bench-sync"}
        )
        upgrade(app.extensions["db"].engine)
        sandbox_port = free_port()
        procs = [
            _spawn(["sandbox", "--port", str(sandbox_port), "--data-dir", str(data / "sb")], env)
        ]
        try:
            sandbox = f"http://{LOOPBACK}:{sandbox_port}"
            _wait_for(f"{sandbox}/_sandbox/health")
            procs += [
                _spawn(["worker", "--no-fork", "--name", f"bench-{i}"], env) for i in range(workers)
            ]
            with app.app_context():
                platform = Platform(
                    name="sandbox",
                    connector="timerepublik",
                    base_url=sandbox,
                    max_concurrency=workers,
                )
                platform.credentials = SANDBOX_CREDENTIALS
                db.session.add(platform)
                db.session.commit()
                people = []
                for n in range(members):
                    member = Member(email=f"bench{n}@example.org", display_name=f"Bench {n}")
                    db.session.add(member)
                    db.session.flush()
                    db.session.add(PlatformLink(member_id=member.id, platform_id=platform.id))
                    record_effect(
                        platform_id=platform.id, kind="register_member", member_id=member.id
                    )
                    db.session.commit()
                    people.append(member)
                _drain("register_member", members, timeout=120)
                accounts = [ledger.account_for_member(m.id).id for m in people]
                db.session.commit()
                # The platform is off while the ledger posts, so the timing is the delivery
                # alone (drains leave a disabled platform's rows waiting). Pausing the workers
                # is not enough: a worker already blocked waiting for a job still takes one.
                platform.enabled = False
                db.session.commit()
                _wait_idle()
                for i in range(transfers):
                    # Alternate directions so no balance drifts toward a credit limit.
                    a, b = accounts[i % members], accounts[(i + 1) % members]
                    payer, payee = (a, b) if (i // members) % 2 == 0 else (b, a)
                    ledger.post_transfer(
                        payer_account_id=payer,
                        payee_account_id=payee,
                        minutes=1,
                        description="bench",
                        kind="help",
                    )
                    db.session.commit()
                platform.enabled = True
                db.session.commit()
                _check_nothing_delivered(transfers)
                started = time.monotonic()
                ensure_drains([platform.id])
                elapsed = _drain("push_transfer", transfers, timeout=600, since=started)
                wallets = list(
                    db.session.scalars(
                        select(PlatformLink.remote_wallet_id).where(
                            PlatformLink.platform_id == platform.id
                        )
                    )
                )
                raw = _raw_calls(sandbox, wallets, workers, transfers)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=15)
            app.extensions["db"].dispose()
            if own_redis:
                own_redis.stop()
    bound = workers / (latency_ms / 1000)
    rate = transfers / elapsed
    print(f"\nSync throughput against the sandbox at {latency_ms} ms, {workers} workers")
    print(f"  bound N/latency                         {bound:10.1f} transfers/s   1.00x")
    print(
        f"  delivered                               {rate:10.1f} transfers/s   {rate / bound:.2f}x"
    )
    raw_rate = transfers / raw
    print(
        f"  the same calls, connector alone        {raw_rate:10.1f} transfers/s   "
        f"{raw_rate / bound:.2f}x  (engine: {rate / raw_rate:.2f} of it)"
    )
    print(f"  ({transfers} transfers delivered in {elapsed:.2f} s)")
    return rate / bound


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--transfers", type=int, default=400)
    parser.add_argument("--latency-ms", type=int, default=20)
    args = parser.parse_args()
    run(args.workers, args.transfers, args.latency_ms)


if __name__ == "__main__":
    main()

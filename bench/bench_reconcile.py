"""Reconciliation's comparison step at scale, as a ratio of a plain SQL GROUP BY.

Builds a ledger of W linked wallets and T transfers between them (half imported from the
platform, half pushed to it), stages the platform's balances (1% of them off), then times:

- baseline: ``SELECT account_id, SUM(amount_minutes) FROM ledger_entries GROUP BY account_id``
- reconcile: ``gateway.sync.balances.record_differences`` over the same ledger (target <= 3x),
  with its peak Python memory (target < 300 MB) and the process's peak RSS.

Reading remote balances over HTTP is measured by bench_sync's kind of run, not here: at 100k
wallets it is bound by the platform's latency, not by the gateway.

    python -m bench.bench_reconcile [--wallets 100000] [--transfers 1000000]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

from sqlalchemy import text

from bench.harness import scratch_database
from gateway import create_app
from gateway.db import db, utcnow
from gateway.federation.models import Platform
from gateway.migrate import upgrade
from gateway.sync.balances import record_differences
from gateway.sync.models import ReconciliationRun

BATCH = 20_000


def _ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def _insert(table: str, rows: list[dict]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    statement = text(
        f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - our own table and columns
        f"VALUES ({', '.join(':' + c for c in columns)})"
    )
    for start in range(0, len(rows), BATCH):
        db.session.execute(statement, rows[start : start + BATCH])


def build(wallets: int, transfers: int) -> tuple[str, str]:
    """Fill the ledger; return (platform id, run id)."""
    rng = random.Random(7)
    now = utcnow()
    platform = Platform(name="bench", connector="timerepublik", base_url="http://127.0.0.1:9")
    db.session.add(platform)
    db.session.flush()
    members, accounts = _ids(wallets), _ids(wallets)
    _insert(
        "members",
        [
            {
                "id": m,
                "email": f"w{i}@example.org",
                "display_name": f"W{i}",
                "locale": "it",
                "skills": "[]",
                "is_admin": False,
                "status": "active",
                "created_at": now,
                "updated_at": now,
            }
            for i, m in enumerate(members)
        ],
    )
    _insert(
        "ledger_accounts",
        [
            {
                "id": a,
                "kind": "member",
                "member_id": m,
                "credit_limit_minutes": None,
                "balance_minutes": 0,
                "created_at": now,
            }
            for a, m in zip(accounts, members, strict=True)
        ],
    )
    _insert(
        "platform_links",
        [
            {
                "id": str(uuid.uuid4()),
                "member_id": m,
                "platform_id": platform.id,
                "remote_member_id": f"rm{i}",
                "remote_wallet_id": f"rw{i}",
                "state": "active",
                "linked_via": "registration",
                "created_at": now,
                "updated_at": now,
            }
            for i, m in enumerate(members)
        ],
    )
    balances = [0] * wallets
    entry_id = 0
    for start in range(0, transfers, BATCH):
        txns, entries, outbox = [], [], []
        for n in range(start, min(transfers, start + BATCH)):
            payer, payee = rng.randrange(wallets), rng.randrange(wallets)
            if payer == payee:
                payee = (payee + 1) % wallets
            minutes = rng.randint(1, 120)
            tid = str(uuid.uuid4())
            imported = n % 2 == 0
            txns.append(
                {
                    "id": tid,
                    "kind": "import" if imported else "help",
                    "description": "",
                    "occurred_at": now,
                    "created_at": now,
                    "reversal_of": None,
                    "source": "callback" if imported else "api",
                    "external_platform_id": platform.id if imported else None,
                    "external_id": f"rt{n}" if imported else None,
                    "metadata": "{}",
                    "created_by_client_id": None,
                }
            )
            for account, amount in ((payer, -minutes), (payee, minutes)):
                entry_id += 1
                balances[account] += amount
                entries.append(
                    {
                        "id": entry_id,
                        "transaction_id": tid,
                        "account_id": accounts[account],
                        "amount_minutes": amount,
                        "balance_after_minutes": balances[account],
                        "created_at": now,
                    }
                )
            if not imported:
                outbox.append(
                    {
                        "id": str(uuid.uuid4()),
                        "platform_id": platform.id,
                        "kind": "push_transfer",
                        "transaction_id": tid,
                        "payload": "{}",
                        "state": "succeeded",
                        "attempts": 1,
                        "next_attempt_at": now,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
        _insert("ledger_transactions", txns)
        _insert("ledger_entries", entries)
        _insert("outbox", outbox)
        db.session.commit()
    for start in range(0, wallets, BATCH):
        db.session.execute(
            text("UPDATE ledger_accounts SET balance_minutes = :b WHERE id = :id"),
            [
                {"b": balances[i], "id": accounts[i]}
                for i in range(start, min(wallets, start + BATCH))
            ],
        )
    run = ReconciliationRun(platform_id=platform.id, trigger="bench")
    db.session.add(run)
    db.session.flush()
    _insert(
        "reconciliation_remote_balances",
        [
            {
                "run_id": run.id,
                "remote_wallet_id": f"rw{i}",
                "minutes": balances[i] + (5 if i % 100 == 0 else 0),
            }
            for i in range(wallets)
        ],
    )
    db.session.commit()
    return platform.id, run.id


def run(wallets: int, transfers: int) -> float:
    """Build, measure and print; return reconcile / baseline."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-reconcile-") as tmp,
        scratch_database(
            os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{Path(tmp) / 'gw.db'}"
        ) as url,
    ):
        app = create_app(
            {
                "DATABASE_URL": url,
                "GATEWAY_DATA_DIR": tmp,
                "START_EMBEDDED_REDIS": False,
                "SECRET_KEY": "b" * 40,
            }
        )
        upgrade(app.extensions["db"].engine)
        with app.app_context():
            started = time.monotonic()
            platform_id, run_id = build(wallets, transfers)
            print(
                f"(built {wallets} wallets and {transfers} transfers in "
                f"{time.monotonic() - started:.0f} s)"
            )
            db.session.execute(text("ANALYZE"))
            db.session.commit()
            started = time.monotonic()
            rows = db.session.execute(
                text(
                    "SELECT account_id, SUM(amount_minutes) FROM ledger_entries GROUP BY account_id"
                )
            ).all()
            baseline = time.monotonic() - started
            tracemalloc.start()
            started = time.monotonic()
            differences = record_differences(run_id, platform_id)
            db.session.commit()
            elapsed = time.monotonic() - started
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        app.extensions["db"].dispose()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nReconciliation of {wallets} wallets / {transfers} transfers")
    print(f"  baseline GROUP BY ({len(rows)} accounts)          {baseline:8.2f} s   1.00x")
    print(
        f"  record_differences ({differences} differences)       {elapsed:8.2f} s   "
        f"{elapsed / baseline:.2f}x"
    )
    print(f"  peak Python memory during reconcile   {peak / 2**20:8.1f} MB")
    print(f"  peak RSS of the process               {rss:8.1f} MB")
    if differences != wallets // 100 + (1 if wallets % 100 else 0):
        raise SystemExit(f"expected {wallets // 100} differences, found {differences}")
    return elapsed / baseline


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wallets", type=int, default=100_000)
    parser.add_argument("--transfers", type=int, default=1_000_000)
    args = parser.parse_args()
    run(args.wallets, args.transfers)


if __name__ == "__main__":
    main()

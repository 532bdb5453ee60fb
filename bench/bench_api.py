"""Callback ingest and transaction POST throughput on gunicorn, beside a bare Flask endpoint.

One gunicorn server serves all three, in one run: the bare endpoint is the baseline, so the
ratios say what the gateway's work costs (targets: callbacks >= 0.5x, transactions >= 0.3x).
The four take turns in five slices each, so that a drift in the machine's speed hits all alike.

    python -m bench.bench_api [--seconds 5] [--threads 8]

BENCH_DATABASE_URL selects the database (default: a SQLite file; for PostgreSQL, any database
URL of the server: the run creates a database of its own there and drops it after); REDIS_URL a
Redis (default: an embedded one). Only loopback is used.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import tempfile
import uuid
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import requests

from bench.harness import (
    gunicorn_server,
    measure,
    measure_interleaved,
    report,
    scratch_database,
    server_cpu_seconds,
)
from gateway import create_app, embedded_redis
from gateway.auth.models import OAuthClient
from gateway.auth.tokens import issue_token
from gateway.callbacks.signature import sign
from gateway.db import db, make_engine
from gateway.federation.models import PlatformLink
from gateway.federation.platforms import add_platform
from gateway.ledger import services as ledger
from gateway.members.models import Member
from gateway.migrate import upgrade

SECRET = "whsec_" + base64.b64encode(b"bench-secret-bench-secret-bench!").decode()


MEMBERS = 200


def _seed(app) -> tuple[str, list[str]]:
    """A platform with linked members, and a website token; returns (token, member ids)."""
    with app.app_context():
        platform = add_platform(
            "bench",
            "timerepublik",
            "http://127.0.0.1:9",
            credentials={"client_id": "bench", "client_secret": "bench"},
            webhook_secrets=[SECRET],
        )
        members = []
        for n, wallet in enumerate(["w-a", "w-b", *(f"w-{n}" for n in range(2, MEMBERS))]):
            member = Member(email=f"bench{n}@example.org", display_name=f"Bench {n}")
            db.session.add(member)
            db.session.flush()
            db.session.add(
                PlatformLink(
                    member_id=member.id,
                    platform_id=platform.id,
                    state="active",
                    remote_member_id=f"m{n}",
                    remote_wallet_id=wallet,
                )
            )
            # Members of a running site have their accounts: creating one is a first posting's
            # cost, not every posting's.
            ledger.account_for_member(member.id)
            members.append(member.id)
        db.session.add(
            OAuthClient(
                client_id="bench-site",
                kind="first_party",
                name="bench",
                scope="transactions:write",
                grant_types=["client_credentials"],
            )
        )
        db.session.commit()
        token = issue_token("bench-site", "transactions:write", expires_in=3600)
        return token, members


def _event(n: int) -> tuple[bytes, dict]:
    event_id = f"evt_{uuid.uuid4().hex}"
    body = json.dumps(
        {
            "id": event_id,
            "type": "transfer.completed",
            "created_at": "2026-11-24T10:00:00Z",
            "data": {
                "id": f"t{n}-{uuid.uuid4().hex[:6]}",
                "payer_wallet_id": "w-a",
                "payee_wallet_id": "w-b",
                "minutes": 1,
                "description": "bench",
                "external_reference": f"bench-{n}",
                "status": "completed",
                "reversal_of": None,
                "created_at": "2026-11-24T10:00:00Z",
            },
        }
    ).encode()
    stamp = int(datetime.now(UTC).timestamp())
    return body, {
        "webhook-id": event_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(SECRET, event_id, stamp, body),
        "Content-Type": "application/json",
    }


class _Failures:
    """The first failed request's answer, so that a failed run says why."""

    def __init__(self) -> None:
        self.first: str | None = None

    def keep(self, text: str) -> RuntimeError:
        if self.first is None:
            self.first = text[:300]
        return RuntimeError(text)


def run(seconds: float, threads: int) -> dict[str, float]:
    """Measure and print; return the ratios."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-api-") as tmp,
        scratch_database(os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{tmp}/gw.db") as url,
    ):
        own_redis = None
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            own_redis = embedded_redis.start(Path(tmp) / "r")
            redis_url = own_redis.url
        failures = _Failures()
        env = {
            "DATABASE_URL": url,
            "REDIS_URL": redis_url,
            "GATEWAY_DATA_DIR": tmp,
            "SECRET_KEY": "bench-secret-key-0123456789abcdef0123456789",
            "GATEWAY_QUEUE": "bench-api",
            "LOG_LEVEL": "WARNING",
        }
        # Migrated before the app exists: building an app may already read tables.
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        app = create_app({**env, "QUEUE_NAME": "bench-api"})
        token, members = _seed(app)
        alice, bob = members[:2]
        app.extensions["db"].dispose()
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=threads)
        session.mount("http://", adapter)
        try:
            with gunicorn_server(env, workers=2) as base:

                def bare(_i: int) -> None:
                    session.post(f"{base}/bench/bare", json={}, timeout=10).raise_for_status()

                def callback(i: int) -> None:
                    body, headers = _event(i)
                    r = session.post(
                        f"{base}/callbacks/bench", data=body, headers=headers, timeout=10
                    )
                    if r.status_code != 202:
                        raise failures.keep(f"callback {r.status_code}: {r.text}")

                def post(payer: str, payee: str) -> None:
                    r = session.post(
                        f"{base}/api/v1/transactions",
                        json={
                            "payer": {"member_id": payer},
                            "payee": {"member_id": payee},
                            "minutes": 1,
                            "kind": "help",
                            "description": "bench",
                        },
                        headers={
                            "Authorization": f"Bearer {token}",
                            "Idempotency-Key": str(uuid.uuid4()),
                        },
                        timeout=10,
                    )
                    if r.status_code != 201:
                        raise failures.keep(f"transaction {r.status_code}: {r.text}")

                def transaction(i: int) -> None:
                    # Many members, as on the website: postings running at once rarely share an
                    # account lock. A fixed shuffle per i, so every run posts the same pairs.
                    payer, payee = random.Random(i).sample(members, 2)
                    post(payer, payee)

                def hot_pair(i: int) -> None:
                    # The worst case: every posting needs the same two account locks.
                    post(*((alice, bob) if i % 2 else (bob, alice)))

                measure(bare, 1.0, threads)  # warm up every worker
                rates = measure_interleaved(
                    {
                        "bare": bare,
                        "callbacks": callback,
                        "transactions": transaction,
                        "hot": hot_pair,
                    },
                    seconds,
                    threads,
                    partial(server_cpu_seconds, base),
                )
                baseline, callbacks = rates["bare"], rates["callbacks"]
                transactions, hot = rates["transactions"], rates["hot"]
        finally:
            if own_redis:
                own_redis.stop()
    report(
        f"API throughput on gunicorn (2 workers x 8 threads, {threads} client threads)",
        [
            ("callback ingest (verify + store + enqueue)", callbacks),
            (f"POST /api/v1/transactions, {MEMBERS} members", transactions),
            ("POST /api/v1/transactions, one hot pair", hot),
        ],
        baseline,
    )
    if callbacks.errors or transactions.errors or hot.errors or baseline.errors:
        raise SystemExit(f"some requests failed; the first: {failures.first}")
    return {
        "callbacks": callbacks.per_second / baseline.per_second,
        "transactions": transactions.per_second / baseline.per_second,
        "transactions_hot_pair": hot.per_second / baseline.per_second,
    }


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    run(args.seconds, args.threads)


if __name__ == "__main__":
    main()

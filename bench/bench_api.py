"""Callback ingest and transaction POSTs on gunicorn, beside a bare Flask endpoint.

One gunicorn server (2 workers x 8 threads) serves all four, in one run: the bare endpoint is the
baseline, so the ratios say what the gateway's work costs, and the server's CPU per request says
it in milliseconds. The four take turns in slices, so that a drift in the machine's speed hits
all alike. wrk drives the load when it is installed (see bench/load.py), else the Python client,
and the report says which.

    python -m bench.bench_api [--seconds 15] [--connections 8] [--rounds 5] [--client auto]

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

from sqlalchemy.engine import make_url

from bench.harness import gunicorn_server, scratch_database, server_cpu_seconds
from bench.load import Replay, Request, Workload, check, load_generator, measure, report
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


def _transaction(token: str, payer: str, payee: str) -> Request:
    body = {
        "payer": {"member_id": payer},
        "payee": {"member_id": payee},
        "minutes": 1,
        "kind": "help",
        "description": "bench",
    }
    return Request(
        "POST",
        "/api/v1/transactions",
        {
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": str(uuid.uuid4()),
            "Content-Type": "application/json",
        },
        json.dumps(body),
    )


def _workloads(token: str, members: list[str]) -> list[Workload]:
    alice, bob = members[:2]

    def callback(i: int) -> Request:
        body, headers = _event(i)
        return Request("POST", "/callbacks/bench", headers, body.decode())

    def spread(i: int) -> Request:
        # Many members, as on the website: postings running at once rarely share an account
        # lock. A fixed shuffle per i, so every run posts the same pairs.
        return _transaction(token, *random.Random(i).sample(members, 2))

    def hot_pair(i: int) -> Request:
        # The worst case: every posting needs the same two account locks.
        return _transaction(token, *((alice, bob) if i % 2 else (bob, alice)))

    bare = Request("POST", "/bench/bare", {"Content-Type": "application/json"}, "{}")
    return [
        Replay("bare Flask endpoint (baseline)", lambda _i: bare, 200, cycle=True),
        Replay("callback ingest (verify + store + enqueue)", callback, 202),
        Replay(f"POST /api/v1/transactions, {MEMBERS} members", spread, 201),
        Replay("POST /api/v1/transactions, one hot pair", hot_pair, 201),
    ]


def run(
    seconds: int = 15, connections: int = 8, rounds: int = 5, client: str = "auto"
) -> dict[str, float]:
    """Measure and print; return the ratios to the bare endpoint."""
    generator = load_generator(client, connections)
    with (
        tempfile.TemporaryDirectory(prefix="bench-api-") as tmp,
        scratch_database(os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{tmp}/gw.db") as url,
    ):
        own_redis = None
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            own_redis = embedded_redis.start(Path(tmp) / "r")
            redis_url = own_redis.url
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
        app.extensions["db"].dispose()
        workloads = _workloads(token, members)
        try:
            with gunicorn_server(env, workers=2) as base:
                cpu = partial(server_cpu_seconds, base)
                # Warms every worker up, and bounds how many operations a slice can use.
                warm = generator.run(base, workloads[0], workloads[0].prepare(1), 2, cpu)
                rates = measure(
                    generator,
                    base,
                    workloads,
                    seconds,
                    cpu,
                    rounds=rounds,
                    ceiling_per_second=warm.per_second * 1.5 + 100,
                )
        finally:
            if own_redis:
                own_redis.stop()
    database = make_url(url).get_backend_name()
    report(
        f"API on gunicorn (2 workers x 8 threads), {database}, {seconds} s each in {rounds} turns",
        generator,
        rates,
        baseline=workloads[0].name,
    )
    check(rates)
    bare = rates[workloads[0].name].per_second
    return {name: rate.per_second / bare for name, rate in rates.items()}


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15, help="per measurement (default 15)")
    parser.add_argument("--connections", type=int, default=8, help="open at once (default 8)")
    parser.add_argument("--rounds", type=int, default=5, help="turns taken (default 5)")
    parser.add_argument(
        "--client", choices=["auto", "wrk", "python"], default="auto", help="load generator"
    )
    args = parser.parse_args()
    run(args.seconds, args.connections, args.rounds, args.client)


if __name__ == "__main__":
    main()

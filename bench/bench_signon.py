"""Sign-on on gunicorn beside a bare Flask endpoint, in one run.

- token endpoint: client-credentials exchanges;
- full login round trip: authorization request, login page, password check (scrypt), back to the
  authorization endpoint, and the code's exchange for tokens (with an ID token signed RS256),
  as a browser and its relying party make them: one operation is five requests.

wrk drives the load when it is installed (see bench/load.py), else the Python client, and the
report says which.

    python -m bench.bench_signon [--seconds 15] [--connections 8] [--rounds 5] [--client auto]

BENCH_DATABASE_URL selects the database server (default: a SQLite file; on PostgreSQL the run
uses a scratch database it drops after); REDIS_URL a Redis (default: an embedded one). Only
loopback is used.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import secrets
import tempfile
from functools import partial
from pathlib import Path

from sqlalchemy.engine import make_url
from werkzeug.security import generate_password_hash

from bench.harness import gunicorn_server, scratch_database, server_cpu_seconds
from bench.load import (
    LoginClient,
    LoginRoundTrip,
    Replay,
    Request,
    Workload,
    check,
    load_generator,
    measure,
    report,
)
from gateway import create_app, embedded_redis
from gateway.auth.clients import create_client
from gateway.db import db
from gateway.members.models import Member
from gateway.migrate import upgrade

CALLBACK = "https://rp.example/callback"
PASSWORD = "bench password that is long"  # noqa: S105 - a bench member's
MEMBERS = 200


def _seed(app) -> tuple[str, str, str, str]:
    """A first-party client, a machine client and members; returns their ids and secrets."""
    with app.app_context():
        site = create_client(
            "Bench site", "openid profile email", redirect_uris=[CALLBACK], kind="first_party"
        )
        machine = create_client("Bench operators' tooling", "admin", kind="machine")
        password_hash = generate_password_hash(PASSWORD)
        for n in range(MEMBERS):
            db.session.add(
                Member(
                    email=f"bench{n}@example.org", display_name=f"B{n}", password_hash=password_hash
                )
            )
        db.session.commit()
        return site.client.client_id, site.secret, machine.client.client_id, machine.secret


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def run(
    seconds: int = 15, connections: int = 8, rounds: int = 5, client: str = "auto"
) -> dict[str, float]:
    """Measure and print; return the ratios to the bare endpoint."""
    generator = load_generator(client, connections)
    with (
        tempfile.TemporaryDirectory(prefix="bench-signon-") as tmp,
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
            "GATEWAY_QUEUE": "bench-signon",
            "LOG_LEVEL": "WARNING",
            # Every simulated browser logs in from 127.0.0.1: lift the per-IP login limit.
            "LOGIN_RATE_LIMIT_PER_IP": "1000000",
            "LOGIN_RATE_LIMIT_PER_ACCOUNT": "1000000",
        }
        app = create_app({**env, "QUEUE_NAME": "bench-signon"})
        upgrade(app.extensions["db"].engine)
        site_id, site_secret, machine_id, machine_secret = _seed(app)
        app.extensions["db"].dispose()
        machine_auth = base64.b64encode(f"{machine_id}:{machine_secret}".encode()).decode()
        token = Request(
            "POST",
            "/oauth/token",
            {
                "Authorization": f"Basic {machine_auth}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
            "grant_type=client_credentials",
        )
        bare = Request("POST", "/bench/bare", {"Content-Type": "application/json"}, "{}")
        site = LoginClient(
            site_id,
            site_secret,
            CALLBACK,
            [f"bench{n}@example.org" for n in range(MEMBERS)],
            PASSWORD,
        )
        workloads: list[Workload] = [
            Replay("bare Flask endpoint (baseline)", lambda _i: bare, 200, cycle=True),
            Replay("token endpoint (client credentials)", lambda _i: token, 200, cycle=True),
            LoginRoundTrip("full login round trip (5 requests)", site, _pkce),
        ]
        try:
            with gunicorn_server(env, workers=2) as base:
                cpu = partial(server_cpu_seconds, base)
                warm = generator.run(base, workloads[0], workloads[0].prepare(1), 2, cpu)
                ceiling = warm.per_second * 1.5 + 100
                rates = measure(
                    generator,
                    base,
                    workloads[:2],
                    seconds,
                    cpu,
                    rounds=rounds,
                    ceiling_per_second=ceiling,
                )
                # A round trip takes a second or more: in short slices, the ones cut off at each
                # slice's end would weigh on its CPU figure. One slice: at most one per connection.
                rates |= measure(
                    generator,
                    base,
                    workloads[2:],
                    seconds,
                    cpu,
                    rounds=1,
                    ceiling_per_second=ceiling,
                )
        finally:
            if own_redis is not None:
                own_redis.stop()
    database = make_url(url).get_backend_name()
    report(
        f"Sign-on on gunicorn (2 workers x 8 threads), {database}, "
        f"{seconds} s each in {rounds} turns",
        generator,
        rates,
        baseline=workloads[0].name,
    )
    check(rates)
    bare_rate = rates[workloads[0].name].per_second
    return {name: rate.per_second / bare_rate for name, rate in rates.items()}


def main() -> None:
    """Command line entry."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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

"""Sign-on throughput on gunicorn beside a bare Flask endpoint, in one run.

- token endpoint: client-credentials exchanges per second;
- code exchange: authorization code + PKCE redeemed for tokens (with an ID token signed RS256);
- full login round trip: authorization request, login page, password check (scrypt),
  back to the authorization endpoint, the code at the client, and its exchange for tokens.

    python -m bench.bench_signon [--seconds 5] [--threads 8]

BENCH_DATABASE_URL selects the database server (default: a SQLite file; on PostgreSQL the run
uses a scratch database it drops after); REDIS_URL a Redis (default:
an embedded one). Only loopback is used.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import secrets
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
from werkzeug.security import generate_password_hash

from bench.harness import gunicorn_server, measure, report, scratch_database
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


def run(seconds: float, threads: int) -> dict[str, float]:
    """Measure and print; return the ratios."""
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
        shared = requests.Session()
        shared.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=threads))
        try:
            with gunicorn_server(env, workers=2) as base:

                def bare(_i: int) -> None:
                    shared.post(f"{base}/bench/bare", json={}, timeout=10).raise_for_status()

                def client_credentials(_i: int) -> None:
                    r = shared.post(
                        f"{base}/oauth/token",
                        data={"grant_type": "client_credentials"},
                        auth=(machine_id, machine_secret),
                        timeout=10,
                    )
                    r.raise_for_status()

                def login_round_trip(i: int, *, exchange_only: bool = False) -> None:
                    browser = requests.Session()
                    verifier, challenge = _pkce()
                    params = {
                        "response_type": "code",
                        "client_id": site_id,
                        "redirect_uri": CALLBACK,
                        "scope": "openid profile email",
                        "state": str(i),
                        "nonce": secrets.token_urlsafe(8),
                        "code_challenge": challenge,
                        "code_challenge_method": "S256",
                    }
                    r = browser.get(
                        f"{base}/oauth/authorize", params=params, allow_redirects=False, timeout=10
                    )
                    login_url = base + r.headers["Location"]
                    page = browser.get(login_url, timeout=10)
                    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
                    r = browser.post(
                        login_url,
                        data={
                            "email": f"bench{i % MEMBERS}@example.org",
                            "password": PASSWORD,
                            "csrf_token": token,
                        },
                        allow_redirects=False,
                        timeout=10,
                    )
                    r = browser.get(base + r.headers["Location"], allow_redirects=False, timeout=10)
                    code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
                    r = browser.post(
                        f"{base}/oauth/token",
                        data={
                            "grant_type": "authorization_code",
                            "code": code,
                            "redirect_uri": CALLBACK,
                            "code_verifier": verifier,
                        },
                        auth=(site_id, site_secret),
                        timeout=10,
                    )
                    r.raise_for_status()
                    assert "id_token" in r.json()

                baseline = measure(bare, seconds, threads)
                token_rate = measure(client_credentials, seconds, threads)
                login_rate = measure(login_round_trip, seconds, threads)
        finally:
            if own_redis is not None:
                own_redis.stop()
    report(
        f"Sign-on on gunicorn (2 workers x 8 threads), {threads} client threads",
        [
            ("token endpoint (client credentials)", token_rate),
            ("full login round trip (5 requests)", login_rate),
        ],
        baseline,
    )
    return {
        "token": token_rate.per_second / baseline.per_second,
        "login": login_rate.per_second / baseline.per_second,
    }


def main() -> None:
    """Command line entry."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    run(args.seconds, args.threads)


if __name__ == "__main__":
    main()

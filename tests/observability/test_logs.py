"""Logs: JSON lines, request ids carried into jobs, and nothing secret or personal in any
line of a realistic run captured at DEBUG."""

from __future__ import annotations

import base64
import io
import json
import logging
import time
import uuid

import pytest
from sqlalchemy import select

from gateway.callbacks.signature import sign
from gateway.db import db
from gateway.federation.models import PlatformLink
from gateway.federation.platforms import add_platform
from gateway.jobs import make_worker
from gateway.members.models import Member
from gateway.observability import logs
from gateway.observability.redaction import redact
from tests.auth.oidc_helpers import REDIRECT, authorize_params, pkce_pair, query
from tests.factories import create_client
from tests.members.helpers import csrf, deliver_mail, text_of

WHSEC = "whsec_" + base64.b64encode(b"log-test-secret-log-test-secret!").decode()
PASSWORD = "my very secret password"


@pytest.fixture
def captured(app):
    """Every log line of the run, at DEBUG, as the JSON the gateway writes in production."""
    stream = io.StringIO()
    root = logging.getLogger()
    previous = root.level
    handler = logs.configure("DEBUG", "json", stream)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous)
    logs.configure(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])


def test_request_id_is_echoed_or_made(client):
    mine = client.get("/healthz", headers={"X-Request-Id": "abc12345-trace"})
    assert mine.headers["X-Request-Id"] == "abc12345-trace"
    made = client.get("/healthz", headers={"X-Request-Id": "bad id with spaces"})
    assert made.headers["X-Request-Id"] != "bad id with spaces"
    assert len(made.headers["X-Request-Id"]) == 32


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwxyz"),
        (f"secret is {WHSEC}", WHSEC),
        ("GET /verify-email?token=WyJhYmMiXQ.Z1.sig HTTP/1.1", "WyJhYmMiXQ"),
        ("GET /cb?code=SplxlOBeZQQYbYS6WxSbIA&state=x", "SplxlOBeZQQYbYS6WxSbIA"),
        ("{'access_token': 'vh1Oj1O9ciU4aJVmeYV32z', 'token_type': 'Bearer'}", "vh1Oj1O9ciU4"),
        ('password="hunter2hunter2"', "hunter2hunter2"),
        ("mail for anna.rossi@example.org", "anna.rossi@example.org"),
        ("id_token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", "eyJhbGciOiJSUzI1NiJ9"),
    ],
)
def test_redaction_patterns(line, secret):
    assert secret not in redact(line)


def _signed_callback(event_id: str, payee: str) -> tuple[bytes, dict]:
    body = json.dumps(
        {
            "id": event_id,
            "type": "transfer.completed",
            "created_at": "2026-11-24T10:00:00Z",
            "data": {
                "id": "t-1",
                "payer_wallet_id": "w1",
                "payee_wallet_id": payee,
                "minutes": 30,
                "description": "babysitting",
                "external_reference": None,
                "status": "completed",
                "reversal_of": None,
                "created_at": "2026-11-24T10:00:00Z",
            },
        }
    ).encode()
    stamp = int(time.time())
    return body, {
        "webhook-id": event_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(WHSEC, event_id, stamp, body),
        "Content-Type": "application/json",
        "X-Request-Id": "callback-request-1",
    }


def test_a_full_run_logs_no_secret_and_jobs_carry_the_request_id(app, client, captured):
    secrets_seen: list[str] = [PASSWORD, WHSEC]
    # A member signs up (password, email) and confirms the address (token in the link).
    client.post(
        "/signup",
        data={
            "email": "segreta@example.org",
            "display_name": "Segreta",
            "password": PASSWORD,
            "csrf_token": csrf(client),
        },
        headers={"X-Request-Id": "signup-request-1"},
    )
    (message,) = deliver_mail(app)
    link = next(w for w in text_of(message).split() if "/verify-email" in w)
    secrets_seen.append(link.split("token=", 1)[1])
    client.get(link.split(app.config["GATEWAY_BASE_URL"], 1)[1])
    # A relying party runs the code flow (client secret, code, tokens).
    with app.app_context():
        rp, rp_secret = create_client(scope="openid email offline_access", kind="first_party")
    secrets_seen.append(rp_secret)
    verifier, challenge = pkce_pair()
    scope = "openid email offline_access"
    location = client.get(
        "/oauth/authorize", query_string=authorize_params(rp.client_id, challenge, scope=scope)
    ).headers["Location"]
    code = query(location)["code"]
    tokens = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=(rp.client_id, rp_secret),
    ).json
    secrets_seen += [code, verifier, tokens["access_token"], tokens["refresh_token"]]
    client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    # A partner platform sends a signed callback, processed by a job.
    with app.app_context():
        platform = add_platform(
            "tr",
            "timerepublik",
            "https://tr.example/api",
            credentials={"client_id": "gw", "client_secret": "partner-secret-value"},
            webhook_secrets=[WHSEC],
        )
        member_id = db.session.scalar(select(Member.id))
        db.session.add(
            PlatformLink(
                member_id=member_id,
                platform_id=platform.id,
                state="active",
                remote_member_id="m1",
                remote_wallet_id="w1",
            )
        )
        db.session.commit()
    secrets_seen.append("partner-secret-value")
    body, headers = _signed_callback(f"evt_{uuid.uuid4().hex}", "w-unknown")
    assert client.post("/callbacks/tr", data=body, headers=headers).status_code == 202
    with app.app_context():
        make_worker(app, fork=False).work(burst=True)

    output = captured.getvalue()
    lines = [json.loads(line) for line in output.splitlines()]
    assert len(lines) > 10
    for secret in secrets_seen:
        assert secret not in output, secret
    assert "@example.org" not in output
    # Job lines carry the id of the request that queued them.
    mail_lines = [line for line in lines if line["logger"] == "gateway.members.mail"]
    assert mail_lines
    assert {line["request_id"] for line in mail_lines} == {"signup-request-1"}
    callback_lines = [line for line in lines if line["request_id"] == "callback-request-1"]
    assert any(line["logger"].startswith("rq") for line in callback_lines)

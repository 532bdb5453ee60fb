"""Chaos: the whole sync path under faults, a killed worker and a flushed Redis.

The sandbox timebank answers 30% of calls with errors, throws bursts of 429, duplicates and
reorders its webhooks. Two real `gateway worker` processes deliver the outbox; one is killed
with SIGKILL mid-run and replaced; Redis is flushed mid-run. At the end every linked wallet's
balance is equal on both sides, and every transfer exists exactly once on each side.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests
from sqlalchemy import func, select
from werkzeug.serving import make_server

from connectors.errors import ConnectorError
from connectors.interface import PlatformConfig, TransferData
from connectors.timerepublik import TimeRepublikConnector
from gateway.db import db
from gateway.devsetup import SANDBOX_CREDENTIALS, ensure_sandbox_platform
from gateway.federation.models import PlatformLink
from gateway.ledger import services as ledger
from gateway.ledger.models import Transaction
from gateway.sandbox.app import create_sandbox_app
from gateway.sandbox.server import SandboxServer
from gateway.sync.jobs import sweep
from gateway.sync.models import OutboxItem
from gateway.sync.outbox import record_effect
from gateway.sync.reconcile import reconcile_platform
from tests.factories import create_member

pytestmark = pytest.mark.slow

MEMBERS = 6
LOCAL_TRANSFERS = 24
REMOTE_TRANSFERS = 12


def _retry(call, attempts: int = 60):
    """Call through the sandbox's faults (the test's own calls are not under test)."""
    for _ in range(attempts):
        try:
            return call()
        except ConnectorError:
            time.sleep(0.05)
    raise AssertionError("the sandbox kept failing")


@pytest.fixture
def sandbox(tmp_path):
    app = create_sandbox_app(
        {"SANDBOX_DATA_DIR": str(tmp_path / "sandbox"), "SANDBOX_WEBHOOK_RETRY_BASE_SECONDS": 0.2}
    )
    server = SandboxServer(app).start()
    yield server
    server.stop()


@pytest.fixture
def gateway_server(app, unused_port):
    """The gateway on a real loopback port, so the sandbox can call back."""
    app.config["GATEWAY_BASE_URL"] = f"http://127.0.0.1:{unused_port}"
    server = make_server("127.0.0.1", unused_port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield app.config["GATEWAY_BASE_URL"]
    server.shutdown()
    thread.join()


def _worker(app_config: dict, name: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": app_config["DATABASE_URL"],
        "REDIS_URL": app_config["REDIS_URL"],
        "SECRET_KEY": app_config["SECRET_KEY"],
        "GATEWAY_QUEUE": app_config["QUEUE_NAME"],
        "GATEWAY_DATA_DIR": app_config["GATEWAY_DATA_DIR"],
        "SYNC_LEASE_SECONDS": "5",
        "SYNC_CIRCUIT_COOLDOWN_SECONDS": "3",
        # Backoff as in production but in seconds, not minutes: a row that met six faults in a
        # row would otherwise wait up to a minute, past the test's deadlines (seen in CI).
        "SYNC_BACKOFF_BASE_SECONDS": "0.5",
        "SYNC_BACKOFF_CAP_SECONDS": "4",
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "worker", "--name", name],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _outbox_report() -> list:
    rows = db.session.execute(
        select(OutboxItem.kind, OutboxItem.state, OutboxItem.attempts, OutboxItem.last_error_code)
    ).all()
    return sorted({tuple(r) for r in rows})


def _settled() -> bool:
    db.session.rollback()
    open_rows = db.session.scalar(
        select(func.count())
        .select_from(OutboxItem)
        .where(OutboxItem.state.in_(("pending", "running")))
    )
    return open_rows == 0


def test_everything_agrees_after_faults_kills_and_flushes(
    app, app_config, sandbox, gateway_server, redis_conn
):
    faults = f"{sandbox.url}/_sandbox/faults"
    direct = TimeRepublikConnector(
        PlatformConfig(name="direct", base_url=sandbox.url, credentials=SANDBOX_CREDENTIALS)
    )
    app.config["SYNC_LEASE_SECONDS"] = 5
    app.config["SYNC_CIRCUIT_COOLDOWN_SECONDS"] = 3
    workers = [_worker(app_config, f"chaos-{i}") for i in range(2)]
    try:
        platform = ensure_sandbox_platform(app, sandbox.url)
        with app.app_context():
            members = []
            for _ in range(MEMBERS):
                member = create_member()
                db.session.add(PlatformLink(member_id=member.id, platform_id=platform.id))
                record_effect(platform_id=platform.id, kind="register_member", member_id=member.id)
                db.session.commit()
                members.append(member)
            accounts = [ledger.account_for_member(m.id).id for m in members]
            db.session.commit()

            requests.post(
                faults,
                json={
                    "error_rate": 0.3,
                    "burst_429": 5,
                    "retry_after_seconds": 1,
                    "duplicate_webhooks": True,
                    "reorder_webhooks": True,
                    "reorder_window_ms": 200,
                },
                timeout=5,
            ).raise_for_status()

            for i in range(LOCAL_TRANSFERS):
                payer, payee = accounts[i % MEMBERS], accounts[(i + 1) % MEMBERS]
                ledger.post_transfer(
                    payer_account_id=payer,
                    payee_account_id=payee,
                    minutes=10 + i,
                    description=f"local {i}",
                    kind="help",
                )
                db.session.commit()
                if i == LOCAL_TRANSFERS // 3:
                    workers[0].send_signal(signal.SIGKILL)
                    workers[0].wait()
                    workers[0] = _worker(app_config, "chaos-replacement")
                if i == LOCAL_TRANSFERS // 2:
                    redis_conn.flushdb()

            # Transfers made on the platform itself, between members once they are linked.
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                db.session.rollback()
                wallets = db.session.scalars(
                    select(PlatformLink.remote_wallet_id).where(PlatformLink.state == "active")
                ).all()
                if len(wallets) == MEMBERS:
                    break
                sweep()
                time.sleep(0.5)
            assert len(wallets) == MEMBERS, f"not every member got registered: {_outbox_report()}"
            remote_refs = []
            for i in range(REMOTE_TRANSFERS):
                reference = f"native-{uuid.uuid4().hex[:8]}"
                remote_refs.append(reference)
                _retry(
                    lambda i=i, reference=reference: direct.create_transfer(
                        TransferData(
                            payer_wallet_id=wallets[(i + 2) % MEMBERS],
                            payee_wallet_id=wallets[i % MEMBERS],
                            minutes=5 + i,
                            description=f"native {i}",
                            external_reference=reference,
                        ),
                        f"native-key-{reference}",
                    )
                )

            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not _settled():
                sweep()
                time.sleep(0.5)
            requests.post(faults, json={"clear": True}, timeout=5).raise_for_status()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not _settled():
                sweep()
                time.sleep(0.5)
            assert _settled(), f"outbox rows are still open: {_outbox_report()}"
            time.sleep(2)  # the last (reordered) webhooks
            run = reconcile_platform(platform.id, trigger="test")
            assert run.state == "succeeded", run.error
            if run.resent:
                # Reconciliation revived rows that had died of transient faults: let them land.
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and not _settled():
                    sweep()
                    time.sleep(0.5)
                run = reconcile_platform(platform.id, trigger="test")
            dead = db.session.scalars(select(OutboxItem).where(OutboxItem.state == "dead")).all()
            assert dead == [], [(d.kind, d.attempts, d.last_error_code, d.last_error) for d in dead]

            # Every transfer exactly once on each side.
            remote = []
            cursor = None
            while True:
                page = _retry(lambda cursor=cursor: direct.list_transfers(cursor, 200))
                remote.extend(page.items)
                if page.next_cursor is None or page.next_cursor == cursor:
                    break
                cursor = page.next_cursor
            ours = [
                t.external_reference
                for t in remote
                if (t.external_reference or "").startswith("gw-txn-")
            ]
            assert len(ours) == len(set(ours)) == LOCAL_TRANSFERS
            natives = [t for t in remote if t.external_reference in remote_refs]
            assert len(natives) == REMOTE_TRANSFERS
            for transfer in natives:
                imported = db.session.scalars(
                    select(Transaction).where(
                        Transaction.external_platform_id == platform.id,
                        Transaction.external_id == transfer.id,
                    )
                ).all()
                assert len(imported) == 1

            # Every linked wallet's balance is equal on both sides.
            for member in members:
                link = db.session.scalar(
                    select(PlatformLink).where(PlatformLink.member_id == member.id)
                )
                remote_balance = _retry(lambda link=link: direct.get_balance(link.remote_wallet_id))
                local_balance = ledger.get_balance(ledger.account_for_member(member.id).id)
                assert remote_balance.minutes == local_balance, member.id
            assert run.differences == 0
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=15)
        direct.close()

"""Chaos: the whole sync path under the harsh fault profile, with no operator in the loop.

The sandbox timebank answers half the calls with 500/503, loses the answer to a quarter of those
it handles (the write applied), throttles a tenth with 429, adds 150 ms to each, and duplicates and
holds back 40% of its webhooks. The gateway runs as its real processes: a web server receiving
callbacks, two workers, the scheduler. Mid-run one worker is killed with its whole process tree
(the work horse included), Redis is flushed, and the web process is killed and kept down longer
than the partner retries its webhooks, so what happened meanwhile on the partner's side can only
come back through reconciliation. Local postings and reversals, and transfers and reversals made on
the partner's side, go on throughout.

When the faults clear, the test only watches: within five minutes nothing may be lost, nothing
doubled, no outbox row pending, running or dead, no callback received or failed, and every
member's balance equal in the ledger and at the partner. The figures are printed.

``GATEWAY_CHAOS_TIMINGS=realistic`` runs the same drill with production's timings (slow).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from connectors.errors import ConnectorError
from connectors.interface import PlatformConfig, TransferData
from connectors.timerepublik import TimeRepublikConnector
from gateway.callbacks.models import InboxEvent
from gateway.db import db
from gateway.devsetup import SANDBOX_CREDENTIALS, ensure_sandbox_platform
from gateway.federation.models import PlatformLink
from gateway.ledger import services as ledger
from gateway.ledger.models import Transaction
from gateway.sync.models import OutboxItem, ReconciliationRun
from gateway.sync.outbox import record_effect
from gateway_sandbox.app import create_sandbox_app
from gateway_sandbox.server import SandboxServer
from tests.factories import create_member
from tests.integration.chaos_harness import (
    GatewayProcesses,
    Timings,
    chosen_timings,
    kill_tree,
    kill_worker_tree,
    wait_gone,
)

pytestmark = [
    pytest.mark.slow,
    # Separate processes writing at once is what production does on PostgreSQL; SQLite's one
    # writer would drill its own locks, not the money path.
    pytest.mark.skipif(
        not os.environ.get("TEST_DATABASE_URL"),
        reason="the chaos drill runs on PostgreSQL: set TEST_DATABASE_URL (CI does)",
    ),
]

HARSH = {
    "error_rate": 0.5,
    "lost_response_rate": 0.25,
    "throttle_rate": 0.1,
    "retry_after_seconds": 1,
    "latency_ms": 150,
    "duplicate_webhook_rate": 0.4,
    "reorder_webhook_rate": 0.4,
    "reorder_window_ms": 800,
}
MEMBERS = 8
# The last ones join while the faults are on; the others are linked before.
JOINING = 3
POSTINGS = 40
# Reversed at once, while their push is in flight.
IMMEDIATE_REVERSALS = (3, 17, 31)
# After these postings, a posting whose push is a dead letter just then is reversed (the planned
# one if none is): its reversal must follow the push wherever the push goes.
LATER_REVERSALS = {20: 10, 34: 24, 39: 38}
# Before the faults clear (waiting a while for them), more reversals of dead-lettered pushes.
LATE_REVERSALS_OF_DEAD_PUSHES = 2
KILL_WORKER_AT = 13
FLUSH_REDIS_AT = 22
REMOTE_TRANSFERS = 12  # half while the web process is up, half while it is down
REMOTE_REVERSALS = (1, 8)  # of those, reversed on the partner's side
AGREEMENT_DEADLINE_SECONDS = 300
OURS = "gw-txn-"


@dataclass
class Drill:
    """What the drill did, for the checks and the printed figures."""

    postings: list[str] = field(default_factory=list)  # local transaction ids
    local_reversals: dict[str, str] = field(default_factory=dict)  # original -> reversal
    natives: list[str] = field(default_factory=list)  # partner transfer ids
    native_reversals: dict[str, str] = field(default_factory=dict)  # original -> reversal
    remote_reversal_of_push: tuple[str, str] | None = None  # (local txn, partner reversal id)
    reversals_of_dead_pushes: int = 0
    natives_before_link: int = 0  # partner transfers touching a member not linked here yet
    killed: list[int] = field(default_factory=list)
    horses: list[int] = field(default_factory=list)  # of those, work horses (mid-job)
    course: list[str] = field(default_factory=list)
    web_down_seconds: float = 0.0


def _retry(call: Any, attempts: int = 200) -> Any:
    """Call through the sandbox's faults (the test's own calls are not under test)."""
    for _ in range(attempts):
        try:
            return call()
        except ConnectorError:
            time.sleep(0.05)
    raise AssertionError("the sandbox kept failing")


def _sandbox_app(tmp_path: Any, timings: Timings) -> Any:
    return create_sandbox_app(
        {
            "SANDBOX_DATA_DIR": str(tmp_path / "sandbox"),
            "SANDBOX_WEBHOOK_MAX_ATTEMPTS": timings.webhook_max_attempts,
            "SANDBOX_WEBHOOK_RETRY_BASE_SECONDS": timings.webhook_retry_base_seconds,
            "SANDBOX_WEBHOOK_MAX_BACKOFF_SECONDS": timings.webhook_max_backoff_seconds,
            "SANDBOX_WEBHOOK_POLL_SECONDS": 0.05,
            "SANDBOX_WEBHOOK_TIMEOUT_SECONDS": 2.0,
        }
    )


@pytest.fixture
def timings() -> Timings:
    return chosen_timings()


@pytest.fixture
def sandbox(tmp_path: Any, timings: Timings) -> Any:
    server = SandboxServer(_sandbox_app(tmp_path, timings)).start()
    yield server
    server.stop()


@pytest.fixture
def processes(app_config: dict, tmp_path: Any, timings: Timings, unused_port: int) -> Any:
    running = GatewayProcesses(
        settings={
            "DATABASE_URL": app_config["DATABASE_URL"],
            "REDIS_URL": app_config["REDIS_URL"],
            "SECRET_KEY": app_config["SECRET_KEY"],
            "GATEWAY_QUEUE": app_config["QUEUE_NAME"],
            "GATEWAY_DATA_DIR": app_config["GATEWAY_DATA_DIR"],
            "GATEWAY_BASE_URL": f"http://127.0.0.1:{unused_port}",
            "WEB_CONCURRENCY": "1",
            "LOG_LEVEL": "WARNING",
            **timings.gateway,
        },
        log_dir=tmp_path / "logs",
    )
    yield running
    running.stop_all()


def _partner_rows(sandbox: SandboxServer, query: str, *params: Any) -> list[Any]:
    """Read the partner's own state (its truth, beside its API and faults)."""
    with sandbox.app.extensions["sandbox"].store.reading() as connection:
        return connection.execute(query, params).fetchall()


def _outbox_report() -> str:
    db.session.rollback()
    rows = db.session.execute(
        select(
            OutboxItem.kind,
            OutboxItem.state,
            OutboxItem.last_error_code,
            func.count(),
            func.max(OutboxItem.attempts),
        ).group_by(OutboxItem.kind, OutboxItem.state, OutboxItem.last_error_code)
    ).all()
    return "\n".join(
        f"  {kind} {state} ({code}): {n} row(s), at most {most} attempts"
        for kind, state, code, n, most in rows
    )


def _join(platform_id: str) -> Any:
    """A new member linking to the partner (their registration is an outbox row)."""
    member = create_member()
    db.session.add(PlatformLink(member_id=member.id, platform_id=platform_id))
    record_effect(platform_id=platform_id, kind="register_member", member_id=member.id)
    db.session.commit()
    return member


def _partner_wallets(sandbox: SandboxServer, members: list[Any]) -> list[str | None]:
    """Each member's wallet at the partner (None where it has not registered them yet)."""
    rows = _partner_rows(sandbox, "SELECT external_id, wallet_id FROM members")
    wallets = {row["external_id"]: row["wallet_id"] for row in rows}
    return [wallets.get(m.id) for m in members]


def _dead_pushes(drill: Drill) -> list[str]:
    """The drill's postings whose push is a dead letter now, not reversed on either side."""
    db.session.rollback()
    dead = set(
        db.session.scalars(
            select(OutboxItem.transaction_id).where(
                OutboxItem.kind == "push_transfer", OutboxItem.state == "dead"
            )
        ).all()
    )
    taken = set(drill.local_reversals) | {(drill.remote_reversal_of_push or ("",))[0]}
    return [t for t in drill.postings if t in dead and t not in taken]


def _reverse_here(drill: Drill, txn: str, why: str) -> None:
    reversal = ledger.reverse_transaction(txn, reason=why)
    db.session.commit()
    drill.local_reversals[txn] = reversal.id


def _linked_wallets() -> dict[str, str]:
    """Member id to remote wallet, for every link active here."""
    db.session.rollback()
    return dict(
        db.session.execute(
            select(PlatformLink.member_id, PlatformLink.remote_wallet_id).where(
                PlatformLink.state == "active"
            )
        ).all()
    )


def _disagreements(
    sandbox: SandboxServer, platform_id: str, drill: Drill, members: list[Any]
) -> list[str]:
    """Everything on which the two sides do not (yet) agree; empty when they do."""
    db.session.rollback()
    found: list[str] = []
    open_rows = db.session.execute(
        select(OutboxItem.kind, OutboxItem.state, func.count())
        .where(OutboxItem.state.in_(("pending", "running", "dead", "skipped")))
        .group_by(OutboxItem.kind, OutboxItem.state)
    ).all()
    found += [f"outbox: {n} {kind} row(s) {state}" for kind, state, n in open_rows]
    open_events = db.session.execute(
        select(InboxEvent.event_type, InboxEvent.state, func.count())
        .where(InboxEvent.state.in_(("received", "failed")))
        .group_by(InboxEvent.event_type, InboxEvent.state)
    ).all()
    found += [f"inbox: {n} {kind} event(s) {state}" for kind, state, n in open_events]

    transfers = _partner_rows(
        sandbox, "SELECT id, external_reference, reversed_by, reversal_of FROM transfers"
    )
    references = Counter(t["external_reference"] for t in transfers)
    by_reference = {t["external_reference"]: t for t in transfers}
    for txn in drill.postings:
        copies = references[OURS + txn]
        if copies != 1:
            found.append(f"posting {txn}: {copies} transfer(s) at the partner")
            continue
        reversed_remotely = by_reference[OURS + txn]["reversed_by"] is not None
        reversed_here = ledger.reversal_of(txn) is not None
        if reversed_remotely != reversed_here:
            found.append(
                f"posting {txn}: reversed here {reversed_here}, at the partner {reversed_remotely}"
            )
    for remote_id in drill.natives:
        imported = db.session.scalars(
            select(Transaction).where(
                Transaction.external_platform_id == platform_id,
                Transaction.external_id == remote_id,
            )
        ).all()
        if len(imported) != 1:
            found.append(f"partner transfer {remote_id}: imported {len(imported)} time(s)")
            continue
        if remote_id in drill.native_reversals and ledger.reversal_of(imported[0].id) is None:
            found.append(f"partner reversal of {remote_id}: not applied here")
    if drill.remote_reversal_of_push is not None:
        txn, _reversal = drill.remote_reversal_of_push
        if ledger.reversal_of(txn) is None:
            found.append(f"partner reversal of posting {txn}: not applied here")
    imports = db.session.scalar(
        select(func.count()).select_from(Transaction).where(Transaction.kind == "import")
    )
    if imports != len(drill.natives):
        found.append(f"{imports} imports here for {len(drill.natives)} partner transfers")

    linked = _linked_wallets()
    balances = dict(
        (row["id"], row["balance"])
        for row in _partner_rows(sandbox, "SELECT id, balance FROM wallets")
    )
    for member, wallet in zip(members, _partner_wallets(sandbox, members), strict=True):
        if linked.get(member.id) != wallet:
            found.append(f"member {member.id}: link here {linked.get(member.id)}, wallet {wallet}")
        here = ledger.get_balance(ledger.account_for_member(member.id).id)
        there = balances.get(wallet)
        if here != there:
            found.append(f"member {member.id}: {here} minutes here, {there} at the partner")
    return found


def _figures(
    platform_id: str,
    sandbox: SandboxServer,
    drill: Drill,
    timings: Timings,
    schedule: dict,
    agreed_after: float,
    problems: list[str],
) -> str:
    injected = requests.get(f"{sandbox.url}/_sandbox/faults/injected", timeout=5).json()
    deliveries = Counter(
        row["state"] for row in _partner_rows(sandbox, "SELECT state FROM deliveries")
    )
    runs = Counter(db.session.scalars(select(ReconciliationRun.state)).all())
    outbox = Counter(
        f"{kind}:{state}"
        for kind, state in db.session.execute(select(OutboxItem.kind, OutboxItem.state)).all()
    )
    attempts = db.session.scalar(select(func.sum(OutboxItem.attempts))) or 0
    inbox = Counter(
        f"{state} ({reason})" if reason else state
        for state, reason in db.session.execute(
            select(InboxEvent.state, InboxEvent.parked_reason)
        ).all()
    )
    parked = db.session.scalars(select(InboxEvent.body).where(InboxEvent.state == "parked")).all()
    parked_applied = sum(
        ledger.find_by_external(platform_id, json.loads(body)["data"]["id"]) is not None
        for body in parked
    )
    lines = [
        f"chaos drill ({timings.name} timings), harsh profile {HARSH}",
        f"  local postings {len(drill.postings)}, local reversals {len(drill.local_reversals)}",
        f"  partner transfers {len(drill.natives)}, partner reversals "
        f"{len(drill.native_reversals) + (drill.remote_reversal_of_push is not None)}",
        f"  faults injected: {dict(sorted(injected.items()))} "
        f"(total {sum(injected.values())}); worker tree killed {drill.killed} (work horse "
        f"{drill.horses}); Redis flushed; "
        f"web down {drill.web_down_seconds:.1f} s (the partner gives a webhook up after "
        f"{schedule['gives_up_after_seconds']:.2f} s)",
        f"  webhook deliveries {dict(deliveries)}",
        f"  outbox {dict(sorted(outbox.items()))}, attempts counted {attempts}",
        f"  inbox {dict(inbox)} ({parked_applied} parked event(s) applied since, by "
        f"reconciliation); reconciliation runs {dict(runs)}",
        f"  reversals posted while their push was a dead letter "
        f"{drill.reversals_of_dead_pushes}; partner transfers touching a member not linked here "
        f"{drill.natives_before_link}",
        *drill.course,
        f"  0 lost, 0 duplicated, 0 stuck; balances equal; agreement "
        f"{agreed_after:.1f} s after the faults cleared"
        if not problems
        else f"  NO agreement {agreed_after:.1f} s after the faults cleared",
    ]
    return "\n".join(lines)


def test_both_sides_agree_after_harsh_faults_without_an_operator(
    app, sandbox, processes, timings, redis_conn, unused_port, capsys
):
    faults = f"{sandbox.url}/_sandbox/faults"
    schedule = requests.get(f"{sandbox.url}/_sandbox/webhooks", timeout=5).json()
    direct = TimeRepublikConnector(
        PlatformConfig(name="direct", base_url=sandbox.url, credentials=SANDBOX_CREDENTIALS)
    )
    app.config["GATEWAY_BASE_URL"] = processes.settings["GATEWAY_BASE_URL"]
    drill = Drill()
    started = time.monotonic()

    def _progress(started: float, what: str) -> None:
        line = f"[{time.monotonic() - started:6.1f} s] {what}"
        drill.course.append(line)
        print(line)  # shown when the test fails

    web = processes.web(unused_port)
    workers = [processes.worker(f"chaos-{i}") for i in range(2)]
    processes.start("scheduler", "scheduler")
    try:
        platform = ensure_sandbox_platform(app, sandbox.url)
        with app.app_context():
            members = [_join(platform.id) for _ in range(MEMBERS - JOINING)]
            deadline = time.monotonic() + 60
            while len(_linked_wallets()) < len(members):
                assert time.monotonic() < deadline, f"members not linked\n{_outbox_report()}"
                time.sleep(0.2)
            _progress(started, f"{len(members)} members linked")

            requests.post(faults, json=HARSH, timeout=5).raise_for_status()
            _progress(started, "harsh faults on")
            members += [_join(platform.id) for _ in range(JOINING)]
            accounts = [ledger.account_for_member(m.id).id for m in members]
            db.session.commit()

            # Local postings and reversals, while the members' registrations are still going on.
            for i in range(POSTINGS):
                txn = ledger.post_transfer(
                    payer_account_id=accounts[i % MEMBERS],
                    payee_account_id=accounts[(i + 1) % MEMBERS],
                    minutes=10 + i,
                    description=f"local {i}",
                    kind="help",
                )
                db.session.commit()
                drill.postings.append(txn.id)
                if i in IMMEDIATE_REVERSALS:
                    _reverse_here(drill, txn.id, f"undo {i}")
                if i in LATER_REVERSALS:
                    dead = _dead_pushes(drill)
                    drill.reversals_of_dead_pushes += bool(dead)
                    planned = drill.postings[LATER_REVERSALS[i]]
                    _reverse_here(drill, (dead or [planned])[0], f"undo after {i}")
                if i == KILL_WORKER_AT:
                    drill.killed, drill.horses = kill_worker_tree(workers[0].pid)
                    workers[0].wait(timeout=10)
                    wait_gone(drill.killed)
                    _progress(started, f"worker tree killed: {drill.killed}, horse {drill.horses}")
                    workers[0] = processes.worker("chaos-replacement")
                if i == FLUSH_REDIS_AT:
                    redis_conn.flushdb()
                    _progress(started, "Redis flushed")
                time.sleep(0.1)

            # Transfers made on the partner's side, between the wallets it has: a joining
            # member's too once it is there, whether or not the gateway heard so (its answer may
            # have been lost); an established member's otherwise.
            def wallet_at_partner(index: int) -> str:
                wallets = _partner_wallets(sandbox, members)
                index %= MEMBERS
                # Four places on: an established member, never the transfer's other party.
                return wallets[index] or wallets[(index + 4) % MEMBERS]

            def native(i: int) -> str:
                reference = f"native-{uuid.uuid4().hex[:8]}"
                payer, payee = wallet_at_partner(i + 3), wallet_at_partner(i)
                transfer = _retry(
                    lambda: direct.create_transfer(
                        TransferData(
                            payer_wallet_id=payer,
                            payee_wallet_id=payee,
                            minutes=5 + i,
                            description=f"native {i}",
                            external_reference=reference,
                        ),
                        f"native-key-{reference}",
                    )
                )
                drill.natives.append(transfer.id)
                linked = set(_linked_wallets().values())
                if not {payer, payee} <= linked:
                    drill.natives_before_link += 1
                return transfer.id

            def reverse_at_partner(remote_id: str) -> str:
                reversal = _retry(
                    lambda: direct.reverse_transfer(remote_id, f"native-undo-{remote_id}")
                )
                return reversal.id

            half = REMOTE_TRANSFERS // 2
            for i in range(half):
                remote_id = native(i)
                if i in REMOTE_REVERSALS:
                    drill.native_reversals[remote_id] = reverse_at_partner(remote_id)

            # The callback receiver goes down for longer than the partner retries a webhook.
            down_at = time.monotonic()
            _progress(started, f"{half} partner transfers made; web process killed")
            processes_killed = kill_tree(web.pid)
            web.wait(timeout=10)
            wait_gone(processes_killed)
            for i in range(half, REMOTE_TRANSFERS):
                remote_id = native(i)
                if i in REMOTE_REVERSALS:
                    drill.native_reversals[remote_id] = reverse_at_partner(remote_id)
            # One of our own pushed transfers, reversed on the partner's side.
            kept = [t for t in drill.postings if t not in drill.local_reversals]
            pushed = _partner_rows(
                sandbox,
                "SELECT id, external_reference FROM transfers WHERE external_reference IN "
                f"({', '.join('?' for _ in kept)}) AND reversed_by IS NULL",
                *(OURS + t for t in kept),
            )
            if pushed:
                txn = pushed[0]["external_reference"].removeprefix(OURS)
                drill.remote_reversal_of_push = (txn, reverse_at_partner(pushed[0]["id"]))
            # The faults go on a while longer, until pushes have died that can be reversed.
            deadline = time.monotonic() + timings.dead_push_wait_seconds
            late = 0
            while late < LATE_REVERSALS_OF_DEAD_PUSHES and time.monotonic() < deadline:
                for txn in _dead_pushes(drill)[: LATE_REVERSALS_OF_DEAD_PUSHES - late]:
                    _reverse_here(drill, txn, "undo late")
                    late += 1
                time.sleep(0.5)
            drill.reversals_of_dead_pushes += late
            time.sleep(schedule["gives_up_after_seconds"] + timings.outage_margin_seconds)
            web = processes.web(unused_port)
            drill.web_down_seconds = time.monotonic() - down_at
            _progress(started, f"web process back after {drill.web_down_seconds:.1f} s")

            requests.post(faults, json={"clear": True}, timeout=5).raise_for_status()
            cleared_at = time.monotonic()
            _progress(started, "faults cleared")
            # From here on the test only watches.
            problems = _disagreements(sandbox, platform.id, drill, members)
            while problems and time.monotonic() - cleared_at < AGREEMENT_DEADLINE_SECONDS:
                time.sleep(1)
                problems = _disagreements(sandbox, platform.id, drill, members)
            agreed_after = time.monotonic() - cleared_at
            _progress(started, f"watching ended: {len(problems)} disagreement(s)")
            figures = _figures(
                platform.id, sandbox, drill, timings, schedule, agreed_after, problems
            )
            assert problems == [], (
                "\n".join(problems[:40]) + f"\n{figures}\noutbox:\n{_outbox_report()}"
            )
            assert drill.horses, "the killed worker was running no job"
            gave_up = _partner_rows(
                sandbox, "SELECT count(*) FROM deliveries WHERE state = ?", "failed"
            )
            # The outage did outlast the partner's retries: some events came back only through
            # reconciliation.
            assert gave_up[0][0] > 0
            with capsys.disabled():
                print("\n" + figures)
    finally:
        direct.close()

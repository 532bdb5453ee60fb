"""The operators' console with history: every admin page and admin API list, timed.

Seeds PostgreSQL with set-based SQL (``INSERT ... SELECT generate_series``): 1,000,000 outbox
rows over 90 days (95% delivered, the rest dead, skipped, pending and failing) with an attempt
for each, 200,000 callback events in every
state, 100,000 members with ledger accounts, 20,000 audit rows and 300 reconciliation runs
with differences. Then asks each page and list as a logged-in operator, in process (the
Flask test client: the gateway's own time, without a network), and prints each one's median
and slowest time over ``--repeat`` requests after one warm-up. Target: every one < 200 ms.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        python -m bench.bench_admin [--outbox 1000000] [--callbacks 200000] [--members 100000]

PostgreSQL only: the volumes are what the figure is about, and SQLite is not where they live.
Seeding takes minutes; ``--seeded URL`` measures a database a previous run seeded (with
``--keep``, which leaves it in place and prints its URL). ``--into URL`` names a database of
your own (created empty, e.g. ``createdb adminperf``): it is migrated to the head, seeded only
if it holds no seeded data yet, and measured; run it again to measure the same data after a
change (a new migration's indexes are built on the seeded rows, as on a production upgrade).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url, select, text

from bench.harness import scratch_database
from gateway import create_app, embedded_redis
from gateway.auth.models import token_digest
from gateway.auth.session import SESSION_KEY
from gateway.db import db
from gateway.members.models import Member, MemberSession
from gateway.migrate import upgrade
from gateway.web_server import freeze_loaded_objects

TARGET_MS = 200
PLATFORMS = ("timerepublik", "komunitin", "altrotempo")
# One statement per table, each a generate_series: the database builds the rows itself.
SEED = [
    """
    INSERT INTO platforms (id, name, display_name, connector, base_url, options, enabled,
                           max_concurrency, created_at, updated_at)
    SELECT 'p' || i, (ARRAY['{p0}', '{p1}', '{p2}'])[i], 'Platform ' || i, 'timerepublik',
           'http://127.0.0.1:9', '{{}}'::json, true, 4, now(), now()
    FROM generate_series(1, 3) AS i
    """,
    """
    INSERT INTO members (id, email, display_name, locale, skills, is_admin, status, created_at,
                         updated_at)
    SELECT md5('m' || i)::uuid::text, 'member' || i || '@example.org',
           (ARRAY['Anna', 'Luca', 'Giulia', 'Marco', 'Sara', 'Paolo'])[1 + i % 6] || ' '
             || (ARRAY['Rossi', 'Bianchi', 'Colombo', 'Ferrari', 'Esposito'])[1 + i % 5]
             || ' ' || i,
           'it', '[]'::json, false, 'active', now() - (i || ' minutes')::interval, now()
    FROM generate_series(1, {members}) AS i
    """,
    """
    INSERT INTO ledger_accounts (id, kind, member_id, balance_minutes, created_at)
    SELECT md5('a' || i)::uuid::text, 'member', md5('m' || i)::uuid::text, 0, now()
    FROM generate_series(1, {members}) AS i
    """,
    # Newest first in id order too, as rows arrive; created i minutes * 90 days / N ago.
    """
    INSERT INTO outbox (id, platform_id, kind, member_id, transaction_id, payload, state,
                        attempts, next_attempt_at, last_error, last_error_code, created_at,
                        updated_at, completed_at)
    SELECT md5('o' || i)::uuid::text, 'p' || (1 + i % 3),
           (ARRAY['register_member', 'update_member', 'push_transfer', 'push_transfer',
                  'reverse_transfer'])[1 + i % 5],
           md5('m' || (1 + i % {members}))::uuid::text, NULL,
           ('{{"n": ' || i || '}}')::json, s.state,
           CASE WHEN s.state = 'pending' AND i % 2 = 0 THEN 3
                WHEN s.state = 'pending' THEN 0 WHEN s.state = 'dead' THEN 8 ELSE 1 END,
           c.created + interval '5 minutes',
           CASE WHEN s.state IN ('dead', 'pending') AND i % 2 = 0
                THEN 'HTTP 503 from the platform' END,
           CASE WHEN s.state IN ('dead', 'pending') AND i % 2 = 0 THEN 'http_503' END,
           c.created, c.created,
           CASE WHEN s.state IN ('succeeded', 'dead', 'skipped')
                THEN c.created + ((i % 600) || ' seconds')::interval END
    FROM generate_series(1, {outbox}) AS i,
         LATERAL (SELECT now() - (i * interval '90 days' / {outbox}) AS created) AS c,
         LATERAL (SELECT CASE WHEN i % 100 < 95 THEN 'succeeded' WHEN i % 100 < 97 THEN 'dead'
                              WHEN i % 100 < 98 THEN 'skipped' ELSE 'pending' END AS state) AS s
    """,
    """
    INSERT INTO sync_attempts (id, outbox_id, platform_id, started_at, duration_ms, outcome,
                               error, error_code)
    SELECT md5('s' || o.id)::uuid::text, o.id, o.platform_id,
           coalesce(o.completed_at, o.created_at + interval '1 second'), 40,
           CASE o.state WHEN 'succeeded' THEN 'ok' WHEN 'dead' THEN 'dead' ELSE 'retry' END,
           o.last_error, o.last_error_code
    FROM outbox o
    """,
    """
    INSERT INTO callback_inbox (id, platform_id, webhook_id, event_type, received_at, headers,
                                body, state, attempts, parked_reason, processed_at)
    SELECT md5('c' || i)::uuid::text, 'p' || (1 + i % 3), 'evt_' || i,
           (ARRAY['transfer.created', 'transfer.completed', 'member.updated'])[1 + i % 3],
           now() - (i * interval '90 days' / {callbacks}),
           '{{"webhook-id": "evt_x", "webhook-timestamp": "1"}}'::json,
           '{{"id": "t' || i || '"}}', s.state, 1,
           CASE WHEN s.state = 'parked' THEN 'unknown wallet w' || i END,
           CASE WHEN s.state = 'processed' THEN now() END
    FROM generate_series(1, {callbacks}) AS i,
         LATERAL (SELECT (ARRAY['processed', 'processed', 'processed', 'processed', 'processed',
                                'processed', 'ignored', 'parked', 'failed', 'received'])
                         [1 + i % 10] AS state) AS s
    """,
    """
    INSERT INTO admin_actions (id, actor, action, target_type, target_id, reason, details,
                               created_at)
    SELECT md5('x' || i)::uuid::text, 'member:{operator}',
           (ARRAY['outbox.retry', 'outbox.skip'])[1 + i % 2], 'outbox', md5('o' || i)::uuid::text,
           'bench', '{{}}'::json, now() - (i || ' minutes')::interval
    FROM generate_series(1, 20000) AS i
    """,
    """
    INSERT INTO reconciliation_runs (id, platform_id, state, trigger, started_at, finished_at,
                                     wallets_checked, transfers_seen, imported, resent,
                                     differences)
    SELECT md5('r' || i)::uuid::text, 'p' || (1 + i % 3),
           CASE WHEN i % 17 = 0 THEN 'failed' ELSE 'succeeded' END, 'schedule',
           now() - (i * interval '15 minutes'), now() - (i * interval '15 minutes'),
           {members} / 3, 5000, 3, 1, 40
    FROM generate_series(1, 300) AS i
    """,
    """
    INSERT INTO reconciliation_differences (id, run_id, platform_id, member_id,
                                            remote_wallet_id, local_minutes,
                                            expected_remote_minutes, remote_minutes,
                                            difference_minutes, pending_outbound_minutes,
                                            pending_inbound_minutes, explanation)
    SELECT md5('d' || r || '-' || j)::uuid::text, md5('r' || r)::uuid::text, 'p' || (1 + r % 3),
           md5('m' || (1 + (r * 40 + j) % {members}))::uuid::text, 'w' || j, 60, 60, 30, -30, 30, 0,
           (ARRAY['outbound_pending', 'inbound_not_imported', 'not_mirrored',
                  'unexplained'])[1 + j % 4]
    FROM generate_series(1, 300) AS r, generate_series(1, 40) AS j
    """,
]


def seed(outbox: int, callbacks: int, members: int, operator: str) -> None:
    """Fill every table the console reads, set-based."""
    names = {f"p{i}": name for i, name in enumerate(PLATFORMS)}
    for statement in SEED:
        started = time.monotonic()
        sql = statement.format(
            outbox=outbox, callbacks=callbacks, members=members, operator=operator, **names
        )
        result = db.session.execute(text(sql))
        db.session.commit()
        table = sql.split("INSERT INTO", 1)[1].split("(", 1)[0].strip()
        print(f"  seeded {table:28} {result.rowcount:>9} rows  {time.monotonic() - started:6.1f} s")
    # Fresh statistics and visibility maps, as autovacuum would leave a table of this age.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))


def _operator() -> str:
    member = Member(email="op@example.org", display_name="Operatrice", is_admin=True, locale="en")
    db.session.add(member)
    db.session.commit()
    return member.id


def _log_in(client, member_id: str) -> None:
    token = secrets.token_urlsafe(32)
    db.session.add(MemberSession(token_hash=token_digest(token), member_id=member_id))
    db.session.commit()
    with client.session_transaction() as session:
        session[SESSION_KEY] = token


def _paths(client) -> list[tuple[str, str]]:
    """Every page and list, with real ids and a cursor deep into history."""
    first = client.get("/admin/api/outbox?tab=succeeded&limit=50").json
    item = first["items"][0]["id"]
    deep = client.get(f"/admin/api/outbox?tab=succeeded&cursor={first['next_cursor']}").json
    event = client.get("/admin/api/callbacks?limit=1").json["items"][0]["id"]
    run = client.get("/admin/api/reconciliation?limit=1").json["items"][0]["id"]
    member = client.get("/admin/api/members?q=bianchi 4").json["items"][0]["id"]
    cursor = deep["next_cursor"]
    pages = [
        "/admin",
        "/admin/outbox",
        "/admin/outbox?tab=dead",
        "/admin/outbox?tab=pending",
        "/admin/outbox?tab=succeeded",
        "/admin/outbox?tab=skipped",
        "/admin/outbox?tab=all",
        f"/admin/outbox?tab=succeeded&cursor={cursor}",
        "/admin/outbox?tab=failing&platform=komunitin&kind=push_transfer",
        f"/admin/outbox?tab=all&member={member}",
        "/admin/outbox/bulk?action=retry&tab=failing&platform=komunitin&kind=push_transfer",
        f"/admin/outbox/{item}",
        "/admin/callbacks",
        "/admin/callbacks?state=parked",
        "/admin/callbacks?state=processed&platform=komunitin",
        f"/admin/callbacks/{event}",
        "/admin/reconciliation",
        f"/admin/reconciliation/{run}",
        "/admin/work",
        "/admin/members?q=ferrari",
        "/admin/members?q=member99999",
        f"/admin/members/{member}",
        "/admin/audit",
        "/admin/audit?action=outbox.skip",
        f"/admin/audit?target={item}",
    ]
    apis = [
        "/admin/api/platforms",
        "/admin/api/outbox?tab=failing",
        "/admin/api/outbox?tab=succeeded",
        "/admin/api/outbox",
        f"/admin/api/outbox?tab=succeeded&cursor={cursor}",
        f"/admin/api/outbox?member={member}",
        f"/admin/api/outbox/{item}",
        "/admin/api/callbacks",
        "/admin/api/callbacks?state=failed",
        "/admin/api/reconciliation",
        f"/admin/api/reconciliation/{run}",
        "/admin/api/work",
        "/admin/api/members?q=rossi",
        f"/admin/api/members/{member}",
        "/admin/api/audit",
        "/admin/api/activity",
    ]
    return [("page", p) for p in pages] + [("api", p) for p in apis]


def explain(client, engine: Engine, path: str) -> None:
    """Each statement ``path`` runs, with the database's own time for it.

    Replays every statement under EXPLAIN (ANALYZE, BUFFERS) with its parameters: the
    database's execution time, the buffers it touched and the plan's top node, which the
    machine's load moves far less than a page's wall time."""
    statements: list[tuple[str, Any]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:
        statements.append((statement, parameters))

    client.get(path)  # warm-up, as measured
    event.listen(engine, "before_cursor_execute", capture)
    try:
        client.get(path)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    print(f"{path}: {len(statements)} statements")
    total = 0.0
    with engine.connect() as connection:
        for statement, parameters in statements:
            if not statement.lstrip().upper().startswith("SELECT"):
                print(f"  (not a SELECT) {' '.join(statement.split())[:90]}")
                continue
            sql = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement
            (plan,) = connection.exec_driver_sql(sql, parameters).scalar_one()
            top = plan["Plan"]
            total += plan["Execution Time"]
            print(
                f"  {plan['Execution Time']:8.2f} ms  plan {plan['Planning Time']:5.2f} ms"
                f"  hit {top.get('Shared Hit Blocks', 0):6}"
                f" read {top.get('Shared Read Blocks', 0):5}"
                f"  {top['Node Type']:18} {' '.join(statement.split())[:100]}"
            )
        connection.rollback()
    print(f"  {total:8.2f} ms executing in all")


class StatementLog:
    """Counts the SQL statements an engine runs and the time spent waiting for them.

    The wall time of a page on a shared machine moves with everyone else's load; how many
    statements it runs does not, and the database's share says where the time goes."""

    def __init__(self, engine: Engine) -> None:
        self.statements = 0
        self.seconds = 0.0
        self._started: list[float] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, *_: object) -> None:
        self._started.append(time.perf_counter())

    def _after(self, *_: object) -> None:
        self.statements += 1
        self.seconds += time.perf_counter() - self._started.pop()

    def reset(self) -> None:
        """Start counting afresh."""
        self.statements, self.seconds = 0, 0.0


Result = tuple[str, str, float, float, int, float]


def measure(client, repeat: int, log: StatementLog) -> list[Result]:
    """(kind, path, median ms, slowest ms, statements, median ms in the database) of each."""
    results = []
    for kind, path in _paths(client):
        response = client.get(path)  # warm-up: connection, templates, plans
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}")
        times, in_db, statements = [], [], 0
        for _ in range(repeat):
            log.reset()
            started = time.perf_counter()
            client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            in_db.append(log.seconds * 1000)
            statements = log.statements
        results.append(
            (kind, path, statistics.median(times), max(times), statements, statistics.median(in_db))
        )
    return results


def _seeded_already(url: str) -> bool:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            has_table = connection.scalar(text("SELECT to_regclass('public.outbox') IS NOT NULL"))
            return bool(has_table and connection.scalar(text("SELECT EXISTS (SELECT FROM outbox)")))
    finally:
        engine.dispose()


def run(outbox: int, callbacks: int, members: int, repeat: int, keep: bool = False) -> float:
    """Seed a scratch database, measure and print; return the slowest median in ms."""
    database = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    if not database.startswith("postgres"):
        raise SystemExit("bench_admin runs on PostgreSQL: set BENCH_DATABASE_URL")
    if keep:
        name = f"gw_bench_admin_{secrets.token_hex(4)}"
        server = make_url(database)
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = server.set(database=name).render_as_string(hide_password=False)
        print(f"keeping the seeded database: --seeded {url}")
        return _run(url, (outbox, callbacks, members), repeat)
    with scratch_database(database) as url:
        return _run(url, (outbox, callbacks, members), repeat)


def _run(
    url: str,
    volumes: tuple[int, int, int] | None,
    repeat: int,
    *,
    migrate: bool = False,
    explain_paths: list[str] | None = None,
) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-admin-") as tmp:
        own_redis = None
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            own_redis = embedded_redis.start(Path(tmp) / "r")
            redis_url = own_redis.url
        app = create_app(
            {
                "DATABASE_URL": url,
                "REDIS_URL": redis_url,
                "GATEWAY_DATA_DIR": tmp,
                "SECRET_KEY": "b" * 40,
                "QUEUE_NAME": "bench-admin",
            }
        )
        try:
            with app.app_context():
                if volumes is not None:
                    upgrade(app.extensions["db"].engine)
                    operator = _operator()
                    started = time.monotonic()
                    print("Seeding {} outbox rows, {} callbacks, {} members".format(*volumes))
                    seed(*volumes, operator)
                    print(f"  (seeded in {time.monotonic() - started:.0f} s)")
                else:
                    if migrate:
                        upgrade(app.extensions["db"].engine)
                    operator = db.session.scalar(
                        select(Member.id).where(Member.email == "op@example.org")
                    )
                client = app.test_client()
                _log_in(client, operator)
            if explain_paths:
                for path in explain_paths:
                    explain(client, app.extensions["db"].engine, path)
                return 0.0
            # As the web server does once the app is loaded: without it a full collection
            # walks every module and mapper, a pause of about 100 ms every few requests here.
            freeze_loaded_objects()
            log = StatementLog(app.extensions["db"].engine)
            load_before = os.getloadavg()
            results = measure(client, repeat, log)
            load_after = os.getloadavg()
        finally:
            app.extensions["db"].dispose()
            app.extensions["redis"].close()
            if own_redis is not None:
                own_redis.stop()
    print(
        f"\nAdmin pages and lists: each asked once to warm up, then {repeat} times in turn through"
        "\nthe Flask test client in this process (the gateway's own time: routing, SQL, Redis,"
        "\ntemplates; no network, no browser), the loaded app frozen out of the garbage collector"
        "\nas the web server freezes it. Wall time median and slowest; the SQL statements"
        "\none request runs and the median time spent waiting for them (SQLAlchemy's cursor"
        f"\nevents). Target: median < {TARGET_MS} ms. Load average (1 min) before"
        f" {load_before[0]:.1f}, after {load_after[0]:.1f}, on {os.cpu_count()} cores: wall times"
        " grow with it.\n"
    )
    print(f"  {'':4} {'path':78} {'median':>7} {'slowest':>7}    {'SQL':>4} {'in SQL':>7}")
    for kind, path, median, slowest, statements, in_db in results:
        flag = "" if median < TARGET_MS else "  OVER"
        print(
            f"  {kind:4} {path[:78]:78} {median:7.1f} {slowest:7.1f} ms {statements:4}"
            f" {in_db:7.1f} ms{flag}"
        )
    worst = max(r[2] for r in results)
    print(f"\nslowest median: {worst:.1f} ms")
    return worst


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outbox", type=int, default=1_000_000)
    parser.add_argument("--callbacks", type=int, default=200_000)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="leave the seeded database")
    parser.add_argument("--seeded", help="measure this database, seeded by a --keep run")
    parser.add_argument(
        "--into", help="migrate this (existing) database, seed it unless seeded, and measure"
    )
    parser.add_argument(
        "--explain",
        action="append",
        metavar="PATH",
        help="instead of timing, EXPLAIN ANALYZE each statement this page runs (repeatable)",
    )
    args = parser.parse_args()
    if args.into:
        volumes = (args.outbox, args.callbacks, args.members)
        seeded = _seeded_already(args.into)
        _run(
            args.into,
            None if seeded else volumes,
            args.repeat,
            migrate=True,
            explain_paths=args.explain,
        )
    elif args.seeded:
        _run(args.seeded, None, args.repeat)
    else:
        run(args.outbox, args.callbacks, args.members, args.repeat, keep=args.keep)


if __name__ == "__main__":
    main()

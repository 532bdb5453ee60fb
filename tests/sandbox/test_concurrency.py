"""Several workers at once: one effect per Idempotency-Key, balances that add up.

Two sandbox servers on one data directory stand in for several processes serving one SQLite
file; requests come from many threads, as from several gateway workers.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from connectors.errors import ConnectorError
from connectors.interface import MemberData, TransferData
from tests.sandbox.conftest import start_sandbox

WORKERS = 8


def test_one_key_from_many_workers_acts_once(tmp_path):
    data_dir = tmp_path / "shared"
    first, second = start_sandbox(data_dir), start_sandbox(data_dir)
    try:
        connectors = [s.connector() for s in (first, second) for _ in range(WORKERS // 2)]
        ada = connectors[0].register_member(MemberData("m-1", "ada@example.org", "Ada"), "reg-1")
        push = TransferData(first.clearing_wallet(), ada.wallet_id, 45, "Aiuto", "gw-txn-1")
        with ThreadPoolExecutor(WORKERS) as pool:
            results = list(pool.map(lambda c: c.create_transfer(push, "push-1"), connectors))
        assert len({r.id for r in results}) == 1
        assert len(connectors[0].list_transfers(None, 100).items) == 1
        assert connectors[-1].get_balance(ada.wallet_id).minutes == 45
        for connector in connectors:
            connector.close()
    finally:
        first.server.stop()
        second.server.stop()
    assert first.contract_errors == second.contract_errors == []


def test_concurrent_transfers_keep_balances_consistent(tmp_path):
    data_dir = tmp_path / "shared"
    first, second = start_sandbox(data_dir), start_sandbox(data_dir)
    try:
        setup = first.connector()
        members = [
            setup.register_member(MemberData(f"m-{i}", f"m{i}@example.org", f"M{i}"), f"reg-{i}")
            for i in range(3)
        ]
        wallets = [m.wallet_id for m in members]
        connectors = [s.connector() for s in (first, second) for _ in range(WORKERS // 2)]

        def push(n: int) -> int:
            payer, payee = wallets[n % 3], wallets[(n + 1) % 3]
            data = TransferData(payer, payee, 10 + n, "x", f"gw-txn-{n}")
            try:
                connectors[n % WORKERS].create_transfer(data, f"push-{n}")
            except ConnectorError:
                return 0
            return 1

        with ThreadPoolExecutor(WORKERS) as pool:
            made = sum(pool.map(push, range(40)))
        assert made == 40
        balances = [setup.get_balance(w).minutes for w in wallets]
        assert sum(balances) == 0  # every minute paid was received
        listed = []
        cursor = None
        for _ in range(10):
            page = setup.list_transfers(cursor, 15)
            listed += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
        assert len({t.id for t in listed}) == 40
        for connector in [setup, *connectors]:
            connector.close()
    finally:
        first.server.stop()
        second.server.stop()

"""A Komunitin platform in its documented setup (``token_source=gateway``) through the real
drain (its pool threads) and reconciliation, on a Komunitin accounting API mocked with
``responses``: every request carries a JWT the gateway minted, valid against its JWKS."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import responses
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from gateway.db import db
from gateway.federation.models import Platform
from gateway.federation.platforms import add_platform
from gateway.jobs import make_worker
from gateway.ledger import services as ledger
from gateway.sync.models import OutboxItem
from gateway.sync.reconcile import reconcile_platform
from tests.connectors.conftest import JSON_API, KOMUNITIN_BASE, currency_doc
from tests.connectors.test_komunitin import account_doc, transfer_resource
from tests.sync.conftest import consent

ACCOUNTS = f"{KOMUNITIN_BASE}/TEST/accounts"
TRANSFERS = f"{KOMUNITIN_BASE}/TEST/transfers"


@dataclass
class Accounting:
    """Komunitin's accounting service for currency TEST (hours, scale 2), kept in memory."""

    accounts: dict[str, str] = field(default_factory=dict)  # account id -> user id
    transfers: dict[str, dict] = field(default_factory=dict)
    bearers: list[tuple[str, str]] = field(default_factory=list)  # (thread name, token)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _seen(self, request) -> None:
        authorization = request.headers.get("Authorization", "")
        with self.lock:
            self.bearers.append((threading.current_thread().name, authorization))

    def create_account(self, request):
        self._seen(request)
        data = json.loads(request.body)["data"]
        user = data["relationships"]["users"]["data"][0]["id"]
        self.accounts[data["id"]] = user
        return 201, {}, json.dumps(account_doc(data["id"], users=(user,)))

    def get_account(self, request):
        self._seen(request)
        account_id = request.url.rsplit("/", 1)[1]
        balance = sum(
            (t["attributes"]["amount"] if _party(t, "payee") == account_id else 0)
            - (t["attributes"]["amount"] if _party(t, "payer") == account_id else 0)
            for t in self.transfers.values()
        )
        document = account_doc(account_id, balance, users=(self.accounts[account_id],))
        return 200, {}, json.dumps(document)

    def create_transfer(self, request):
        self._seen(request)
        data = json.loads(request.body)["data"]
        attributes = data["attributes"]
        resource = transfer_resource(
            data["id"],
            amount=attributes["amount"],
            meta=attributes["meta"],
            payer=data["relationships"]["payer"]["data"]["id"],
            payee=data["relationships"]["payee"]["data"]["id"],
        )
        self.transfers[data["id"]] = resource
        return 201, {}, json.dumps({"data": resource})

    def list_transfers(self, request):
        self._seen(request)
        return 200, {}, json.dumps({"data": list(self.transfers.values()), "links": {}})

    def currency(self, request):
        self._seen(request)
        return 200, {}, json.dumps(currency_doc())


def _party(transfer: dict, role: str) -> str:
    return transfer["relationships"][role]["data"]["id"]


@pytest.fixture
def accounting() -> Iterator[tuple[Accounting, responses.RequestsMock]]:
    service = Accounting()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        kind = {"content_type": JSON_API}
        mock.add_callback("GET", f"{KOMUNITIN_BASE}/TEST/currency", service.currency, **kind)
        mock.add_callback("POST", ACCOUNTS, service.create_account, **kind)
        mock.add_callback(
            "GET", re.compile(rf"{re.escape(ACCOUNTS)}/[^/?]+"), service.get_account, **kind
        )
        mock.add_callback("POST", TRANSFERS, service.create_transfer, **kind)
        mock.add_callback("GET", TRANSFERS, service.list_transfers, **kind)
        yield service, mock


def test_a_komunitin_row_goes_through_the_drain_and_reconciliation_with_minted_tokens(
    app, client, accounting
):
    service, _mock = accounting
    with app.app_context():
        platform = add_platform(
            "komunitin",
            "komunitin",
            KOMUNITIN_BASE,
            options={"currency": "TEST", "token_source": "gateway"},
        )
        db.session.commit()
        ada, _ = consent(platform)
        bea, _ = consent(platform)
        make_worker(app, fork=False).work(burst=True)  # the registrations, drained
        ledger.post_transfer(
            payer_account_id=ledger.account_for_member(ada.id).id,
            payee_account_id=ledger.account_for_member(bea.id).id,
            minutes=90,
            description="help with shopping",
            kind="help",
        )
        db.session.commit()
        make_worker(app, fork=False).work(burst=True)  # the transfer, pushed
        rows = db.session.execute(select(OutboxItem.kind, OutboxItem.state)).all()
        run = reconcile_platform(platform.id, trigger="manual")
        platform_id = platform.id

    assert sorted(rows) == [
        ("push_transfer", "succeeded"),
        ("register_member", "succeeded"),
        ("register_member", "succeeded"),
    ]
    assert len(service.accounts) == 2
    [pushed] = service.transfers.values()
    assert pushed["attributes"]["amount"] == 150  # 90 minutes in hours of scale 2
    assert (run.state, run.error, run.wallets_checked, run.differences) == (
        "succeeded",
        None,
        2,
        0,
    )

    # The pushes ran on the drain's pool threads, where no application context exists.
    threads = {name for name, _ in service.bearers}
    assert any(name.startswith("drain") for name in threads)
    keyset = KeySet.import_key_set(client.get("/oauth/jwks").json)
    for _thread, authorization in service.bearers:
        scheme, _, token = authorization.partition(" ")
        assert scheme == "Bearer"
        claims = jwt.decode(token, keyset, algorithms=["RS256"]).claims
        assert claims["iss"] == app.config["GATEWAY_BASE_URL"]
        assert claims["aud"] == KOMUNITIN_BASE
        assert claims["scope"] == "komunitin_accounting"
    with app.app_context():
        assert db.session.get(Platform, platform_id).enabled

"""Both connectors through the shared conformance suite (connectors/testing/conformance.py).

Each class teaches the suite's mock its platform's answers; the suite does the rest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
import responses
from openapi_core import OpenAPI
from responses import matchers

from connectors.interface import PlatformConfig
from connectors.komunitin import KomunitinConnector
from connectors.testing.conformance import ConnectorConformance, Page
from connectors.timerepublik import TimeRepublikConnector
from tests.connectors.conftest import (
    JSON_API,
    KOMUNITIN_BASE,
    PROBLEM,
    TR_BASE,
    add_tr_token,
    currency_doc,
    komunitin_config,
    tr_config,
)
from tests.connectors.contract import (
    KOMUNITIN_CONTRACT,
    PARTNER_CONTRACT,
    komunitin_api,
    partner_api,
)
from tests.connectors.test_komunitin import (
    account_doc,
    errors,
    komunitin_event,
    transfer_resource,
)
from tests.connectors.test_timerepublik import event, problem, transfer_doc

# The reason each error answer gives, in the platform's words.
CODES = {400: "validation_error", 401: "unauthorized", 422: "validation_error", 429: "rate_limited"}


class TestTimeRepublikConformance(ConnectorConformance):
    connector_class = TimeRepublikConnector
    contract = PARTNER_CONTRACT
    base_url = TR_BASE
    create_transfer_url = f"{TR_BASE}/v1/transfers"

    def make_config(self) -> PlatformConfig:
        return tr_config()

    def contract_api(self) -> OpenAPI:
        return partner_api(TR_BASE)

    def arrange_platform(self, mock: responses.RequestsMock) -> None:
        add_tr_token(mock)

    def arrange_transfer_created(self, mock: responses.RequestsMock, transfer_id: str) -> None:
        def created(request: requests.PreparedRequest) -> tuple[int, dict, str]:
            asked = json.loads(request.body or b"{}")
            answer = transfer_doc(
                transfer_id,
                minutes=asked["minutes"],
                reference=asked["external_reference"],
                payer_wallet_id=asked["payer_wallet_id"],
                payee_wallet_id=asked["payee_wallet_id"],
            )
            return 201, {}, json.dumps(answer)

        mock.add_callback(
            "POST", self.create_transfer_url, created, content_type="application/json"
        )

    def idempotency_token(self, request: requests.PreparedRequest) -> str:
        return request.headers["Idempotency-Key"]

    def error_answer(self, status: int) -> dict[str, Any]:
        body = problem(status, CODES.get(status, "unavailable"))
        return {"status": status, "json": body, "content_type": PROBLEM}

    def arrange_balance(self, mock: responses.RequestsMock, wallet_id: str, minutes: int) -> None:
        wallet = {
            "id": wallet_id,
            "member_id": "tr_m1",
            "balance_minutes": minutes,
            "credit_limit_minutes": 600,
            "updated_at": "2026-03-01T10:00:00Z",
        }
        mock.get(f"{TR_BASE}/v1/wallets/{wallet_id}", json=wallet)

    def arrange_transfer_pages(self, mock: responses.RequestsMock, pages: list[Page]) -> None:
        for n, page in enumerate(pages):
            query = {"limit": "2", **({"cursor": f"c{n}"} if n else {})}
            last = n == len(pages) - 1
            mock.get(
                self.create_transfer_url,
                json={
                    "data": [transfer_doc(i, minutes=m, reference=f"native-{i}") for i, m in page],
                    "next_cursor": None if last else f"c{n + 1}",
                },
                match=[matchers.query_param_matcher(query)],
            )

    def arrange_transfer_event(
        self, mock: responses.RequestsMock, transfer_id: str, minutes: int
    ) -> tuple[Mapping[str, str], bytes]:
        event_id = f"evt_{transfer_id}"
        body = event("transfer.completed", transfer_doc(transfer_id, minutes=minutes), event_id)
        return {"webhook-id": event_id}, body


KOMUNITIN_TRANSFERS = f"{KOMUNITIN_BASE}/TEST/transfers"


def _amount(minutes: int) -> int:
    """Minutes in the test currency (hours, scale 2: 100 is an hour)."""
    amount, rest = divmod(minutes * 100, 60)
    assert rest == 0, f"{minutes} minutes are no whole amount"
    return amount


class TestKomunitinConformance(ConnectorConformance):
    connector_class = KomunitinConnector
    contract = KOMUNITIN_CONTRACT
    base_url = KOMUNITIN_BASE
    create_transfer_url = KOMUNITIN_TRANSFERS

    def make_config(self) -> PlatformConfig:
        return komunitin_config()

    def contract_api(self) -> OpenAPI:
        return komunitin_api(KOMUNITIN_BASE)

    def arrange_platform(self, mock: responses.RequestsMock) -> None:
        mock.get(f"{KOMUNITIN_BASE}/TEST/currency", json=currency_doc(), content_type=JSON_API)

    def arrange_transfer_created(self, mock: responses.RequestsMock, transfer_id: str) -> None:
        def created(request: requests.PreparedRequest) -> tuple[int, dict, str]:
            asked = json.loads(request.body or b"{}")["data"]
            answer = transfer_resource(
                transfer_id,
                amount=asked["attributes"]["amount"],
                meta=asked["attributes"]["meta"],
                payer=asked["relationships"]["payer"]["data"]["id"],
                payee=asked["relationships"]["payee"]["data"]["id"],
            )
            return 201, {}, json.dumps({"data": answer})

        mock.add_callback("POST", self.create_transfer_url, created, content_type=JSON_API)

    def idempotency_token(self, request: requests.PreparedRequest) -> str:
        # Komunitin takes no key: the transfer's client-chosen id, derived from it, is the key.
        return json.loads(request.body or b"{}")["data"]["id"]

    def error_answer(self, status: int) -> dict[str, Any]:
        body = errors(status, CODES.get(status, "unavailable"), "refused by the conformance test")
        return {"status": status, "json": body, "content_type": JSON_API}

    def arrange_balance(self, mock: responses.RequestsMock, wallet_id: str, minutes: int) -> None:
        document = account_doc(wallet_id, balance=_amount(minutes))
        mock.get(
            f"{KOMUNITIN_BASE}/TEST/accounts/{wallet_id}", json=document, content_type=JSON_API
        )

    def arrange_transfer_pages(self, mock: responses.RequestsMock, pages: list[Page]) -> None:
        every = [transfer_resource(i, amount=_amount(m)) for page in pages for i, m in page]

        def listed(request: requests.PreparedRequest) -> tuple[int, dict, str]:
            query = parse_qs(urlsplit(str(request.url)).query)
            start, size = int(query["page[after]"][0]), int(query["page[size]"][0])
            more = start + size < len(every)
            links = {"next": f"{KOMUNITIN_TRANSFERS}?page[after]={start + size}"} if more else {}
            return 200, {}, json.dumps({"data": every[start : start + size], "links": links})

        mock.add_callback(
            "GET", re.compile(re.escape(KOMUNITIN_TRANSFERS) + r"\?"), listed, content_type=JSON_API
        )

    def arrange_transfer_event(
        self, mock: responses.RequestsMock, transfer_id: str, minutes: int
    ) -> tuple[Mapping[str, str], bytes]:
        mock.get(
            f"{KOMUNITIN_TRANSFERS}/{transfer_id}",
            json={"data": transfer_resource(transfer_id, amount=_amount(minutes))},
            content_type=JSON_API,
        )
        return {}, komunitin_event("TransferCommitted", transfer_id)

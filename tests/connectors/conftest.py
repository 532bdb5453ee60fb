"""Fixtures: connectors on mocked HTTP, with every exchange checked against the contract."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import responses

from connectors.interface import PlatformConfig
from connectors.komunitin import KomunitinConnector
from connectors.timerepublik import TimeRepublikConnector
from tests.connectors.contract import ContractCheck, komunitin_api, partner_api

TR_BASE = "https://partner.timerepublik.test/api"
TR_TOKEN_URL = f"{TR_BASE}/oauth/token"
TR_SECRET = "s3cret-client-secret"
TR_TOKEN = "tok-partner-1"

KOMUNITIN_BASE = "https://accounting.komunitin.test"
KOMUNITIN_JWT = "eyJ.komunitin.jwt"
PROBLEM = "application/problem+json"
JSON_API = "application/vnd.api+json"


@dataclass
class MockedPlatform:
    """A connector, the mocked platform it talks to, and the contract both must follow."""

    connector: Any
    mock: responses.RequestsMock
    contract: ContractCheck
    content_type: str = "application/json"

    def add(self, method: str, url: str, **kwargs: Any) -> Any:
        """Mock an answer, in the platform's content type unless told otherwise."""
        kwargs.setdefault("content_type", self.content_type)
        return self.mock.add(method, url, **kwargs)

    def calls_to(self, method: str, url: str) -> list[Any]:
        """The recorded calls with this method and URL (query string ignored)."""
        return [
            call
            for call in self.mock.calls
            if call.request.method == method and call.request.url.split("?")[0] == url
        ]


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    """Intercepts every request made with ``requests`` (nothing reaches a network)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        yield mocked


def tr_config(**options: Any) -> PlatformConfig:
    """A TimeRepublik platform configuration on the mocked base URL."""
    return PlatformConfig(
        name="timerepublik",
        base_url=TR_BASE,
        credentials={"client_id": "gateway", "client_secret": TR_SECRET},
        options=options,
    )


def add_tr_token(mock: responses.RequestsMock, token: str = TR_TOKEN, expires_in: int = 3600):
    """Answer the token endpoint with ``token``."""
    return mock.post(
        TR_TOKEN_URL,
        json={"access_token": token, "token_type": "Bearer", "expires_in": expires_in},
    )


@pytest.fixture
def tr(mock: responses.RequestsMock) -> Iterator[MockedPlatform]:
    """A TimeRepublik connector on a mocked partner API; all exchanges checked at the end."""
    add_tr_token(mock)
    connector = TimeRepublikConnector(tr_config())
    platform = MockedPlatform(connector, mock, ContractCheck(partner_api(TR_BASE)))
    yield platform
    platform.contract.check_calls(mock.calls)
    connector.close()


class HandedTokens:
    """A token source as the gateway hands one in: the next token after each ``invalidate``."""

    def __init__(self, *tokens: str) -> None:
        self.tokens = list(tokens)
        self.invalidated = 0

    def token(self) -> str:
        return self.tokens[min(self.invalidated, len(self.tokens) - 1)]

    def invalidate(self) -> None:
        self.invalidated += 1


def komunitin_config(
    tokens: Any = None, credentials: dict[str, Any] | None = None, **options: Any
) -> PlatformConfig:
    """A Komunitin configuration for currency TEST, with a token source handed in."""
    return PlatformConfig(
        name="komunitin",
        base_url=KOMUNITIN_BASE,
        credentials=credentials or {},
        options={"currency": "TEST", **options},
        token_source=HandedTokens(KOMUNITIN_JWT) if tokens is None else tokens or None,
    )


def currency_doc(scale: int = 2, n: int = 1, d: int = 1, code: str = "TEST") -> dict[str, Any]:
    """A Komunitin currency document (an hour currency by default)."""
    return {
        "data": {
            "type": "currencies",
            "id": "5e6f4711-6dee-479f-b168-e91427c19724",
            "attributes": {
                "code": code,
                "status": "active",
                "name": "Hour",
                "namePlural": "Hours",
                "symbol": "h",
                "decimals": 2,
                "scale": scale,
                "rate": {"n": n, "d": d},
            },
            "links": {"self": f"{KOMUNITIN_BASE}/{code}/currency"},
        }
    }


@pytest.fixture
def komunitin(mock: responses.RequestsMock) -> Iterator[MockedPlatform]:
    """A Komunitin connector (hour currency, scale 2) on a mocked accounting API."""
    mock.get(f"{KOMUNITIN_BASE}/TEST/currency", json=currency_doc(), content_type=JSON_API)
    connector = KomunitinConnector(komunitin_config())
    contract = ContractCheck(komunitin_api(KOMUNITIN_BASE))
    platform = MockedPlatform(connector, mock, contract, content_type=JSON_API)
    yield platform
    platform.contract.check_calls(mock.calls)
    connector.close()

"""The conformance suite: what every connector does, checked against its platform's contract.

Subclass ``ConnectorConformance`` in a test module of the connector's package (name the class
``Test...`` so that pytest collects it), set ``connector_class``, ``contract``, ``base_url`` and
``create_transfer_url``, and fill in the hooks: each makes the mocked platform (``responses``)
answer one situation as the real platform does. The suite drives the connector through the
interface only, and after every test checks each request sent, and each documented answer
mocked, against the contract.

What it proves:

- registration: the ``gateway.connectors`` entry point names the class under its ``key``;
- units: minutes go out and come back as minutes, whatever the platform counts in;
- idempotency: a write repeated with its key carries the same identity to the platform, and
  another key another one;
- the error table: 5xx, timeouts and refused connections are ``RetryableError``; 429 is
  retryable no sooner than its ``Retry-After``; 400 and 422 are ``PermanentError``; a 401 that
  a fresh token does not cure is ``AuthError``;
- tokens: a connector that obtains its own tokens keeps them in the ``token_store`` handed in,
  so that another process built on the same store asks for none, and drops a refused one;
- paging: following ``next_cursor`` until it is None reads every transfer once, oldest first;
- callbacks: an event's ``event_id`` is the same on every delivery and differs between events.

``docs/connectors.md`` explains each rule; ``tests/connectors/test_conformance.py`` runs the
suite for the TimeRepublik and Komunitin connectors.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests
import responses
from openapi_core import OpenAPI

from connectors.errors import AuthError, ConflictError, PermanentError, RetryableError
from connectors.interface import Connector, PlatformConfig, TransferData
from connectors.registry import get_connector_class
from connectors.testing.contract import ContractCheck, load_contract
from connectors.tokens import StoredToken, TokenKey

__all__ = ["ConnectorConformance", "MemoryTokenStore", "Page"]

# One page of a platform's transfer listing, as (transfer id, minutes) oldest first.
Page = list[tuple[str, int]]

TRANSFER = TransferData(
    payer_wallet_id="wallet-payer",
    payee_wallet_id="wallet-payee",
    minutes=90,
    description="Help with shopping",
    external_reference="gw-txn-conformance",
)


class MemoryTokenStore:
    """A ``connectors.tokens.TokenStore`` in memory, counting what connectors ask of it.

    Connectors built on one instance behave as processes sharing the gateway's Redis store.
    """

    def __init__(self) -> None:
        self.tokens: dict[TokenKey, StoredToken] = {}
        self.hits = 0
        self.puts = 0
        self.discards = 0

    def get(self, key: TokenKey) -> StoredToken | None:
        """The token put for ``key``, if any."""
        found = self.tokens.get(key)
        self.hits += found is not None
        return found

    def put(self, key: TokenKey, access_token: str, expires_in: float) -> None:
        """Keep the token (for ever: the suite's tests are shorter than any token's life)."""
        self.puts += 1
        self.tokens[key] = StoredToken(access_token, expires_in)

    def discard(self, key: TokenKey) -> None:
        """Forget the token of ``key``."""
        self.discards += 1
        self.tokens.pop(key, None)


class ConnectorConformance(ABC):
    """The shared tests; a subclass names the connector and teaches the mock its platform.

    A subclass that leaves a hook out cannot be instantiated: each of its tests fails naming it.
    """

    connector_class: ClassVar[type[Connector]]
    # The platform's OpenAPI document, vendored in the connector's package (contract/).
    contract: ClassVar[Path]
    base_url: ClassVar[str]
    # Where ``create_transfer`` sends its write: the suite makes it fail there.
    create_transfer_url: ClassVar[str]
    create_transfer_method: ClassVar[str] = "POST"

    # Hooks: the subclass's knowledge of its platform.

    @abstractmethod
    def make_config(self) -> PlatformConfig:
        """The configuration the connector is built from (credentials, options, tokens)."""

    def contract_api(self) -> OpenAPI:
        """The contract, served at ``base_url`` (override to adapt or skip validating it)."""
        return load_contract(self.contract, self.base_url)

    def arrange_platform(self, mock: responses.RequestsMock) -> None:  # noqa: B027 - optional
        """What every operation may need first: a token endpoint, a currency, ..."""

    @abstractmethod
    def arrange_transfer_created(self, mock: responses.RequestsMock, transfer_id: str) -> None:
        """Answer every create at ``create_transfer_url`` with the transfer it asked for,
        completed, under ``transfer_id``."""

    @abstractmethod
    def idempotency_token(self, request: requests.PreparedRequest) -> str:
        """What in a write request carries its idempotency key (a header, a client id)."""

    @abstractmethod
    def error_answer(self, status: int) -> dict[str, Any]:
        """``responses.add`` arguments for an error answer in the platform's own format."""

    @abstractmethod
    def arrange_balance(self, mock: responses.RequestsMock, wallet_id: str, minutes: int) -> None:
        """Make the wallet's balance ``minutes``, in the platform's unit."""

    @abstractmethod
    def arrange_transfer_pages(self, mock: responses.RequestsMock, pages: list[Page]) -> None:
        """Serve these completed transfers, page by page as given, the platform's way."""

    @abstractmethod
    def arrange_transfer_event(
        self, mock: responses.RequestsMock, transfer_id: str, minutes: int
    ) -> tuple[Mapping[str, str], bytes]:
        """Headers and body of the callback saying ``transfer_id`` completed (its signature
        already verified), and whatever the connector reads back to decode it."""

    # The suite.

    @pytest.fixture
    def mock(self) -> Iterator[responses.RequestsMock]:
        """The platform, mocked; every exchange is checked against the contract at the end."""
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
            self.arrange_platform(mocked)
            yield mocked
            ContractCheck(self.contract_api()).check_calls(mocked.calls)

    @pytest.fixture
    def connector(self, mock: responses.RequestsMock) -> Iterator[Connector]:
        """The connector under test, on the mocked platform."""
        built = self.connector_class(self.make_config())
        yield built
        built.close()

    def _writes(self, mock: responses.RequestsMock) -> list[requests.PreparedRequest]:
        return [
            call.request
            for call in mock.calls
            if call.request.method == self.create_transfer_method
            and str(call.request.url).split("?")[0] == self.create_transfer_url
        ]

    def test_the_entry_point_names_the_class_by_its_key(self) -> None:
        assert get_connector_class(self.connector_class.key) is self.connector_class

    def test_a_balance_comes_back_in_minutes(self, connector, mock) -> None:
        self.arrange_balance(mock, "wallet-1", -45)
        balance = connector.get_balance("wallet-1")
        assert (balance.wallet_id, balance.minutes) == ("wallet-1", -45)
        assert balance.as_of.tzinfo is not None

    def test_a_transfer_goes_out_and_comes_back_in_minutes(self, connector, mock) -> None:
        self.arrange_transfer_created(mock, "remote-1")
        made = connector.create_transfer(TRANSFER, "key-1")
        assert (made.id, made.minutes, made.status) == ("remote-1", 90, "completed")
        assert made.external_reference == TRANSFER.external_reference
        assert (made.payer_wallet_id, made.payee_wallet_id) == ("wallet-payer", "wallet-payee")
        assert made.created_at.tzinfo is not None

    def test_one_key_is_one_identity_at_the_platform(self, connector, mock) -> None:
        self.arrange_transfer_created(mock, "remote-1")
        connector.create_transfer(TRANSFER, "key-1")
        connector.create_transfer(TRANSFER, "key-1")
        connector.create_transfer(TRANSFER, "key-2")
        first, again, other = (self.idempotency_token(r) for r in self._writes(mock))
        assert first == again
        assert other != first

    @pytest.mark.parametrize("status", [500, 502, 503, 504])
    def test_a_server_error_is_retryable(self, connector, mock, status) -> None:
        mock.add(self.create_transfer_method, self.create_transfer_url, **self.error_answer(status))
        with pytest.raises(RetryableError) as caught:
            connector.create_transfer(TRANSFER, "key-1")
        assert caught.value.status == status

    @pytest.mark.parametrize(
        "failure", [requests.ConnectionError("refused"), requests.ReadTimeout("slow")]
    )
    def test_a_network_failure_is_retryable(self, connector, mock, failure) -> None:
        mock.add(self.create_transfer_method, self.create_transfer_url, body=failure)
        with pytest.raises(RetryableError):
            connector.create_transfer(TRANSFER, "key-1")

    def test_too_many_requests_waits_as_long_as_the_platform_says(self, connector, mock) -> None:
        answer = self.error_answer(429)
        answer["headers"] = {**answer.get("headers", {}), "Retry-After": "7"}
        mock.add(self.create_transfer_method, self.create_transfer_url, **answer)
        with pytest.raises(RetryableError) as caught:
            connector.create_transfer(TRANSFER, "key-1")
        assert caught.value.retry_after == 7.0

    @pytest.mark.parametrize("status", [400, 422])
    def test_a_refused_request_is_permanent(self, connector, mock, status) -> None:
        mock.add(self.create_transfer_method, self.create_transfer_url, **self.error_answer(status))
        with pytest.raises(PermanentError) as caught:
            connector.create_transfer(TRANSFER, "key-1")
        assert not isinstance(caught.value, (ConflictError, AuthError))
        assert caught.value.code  # machine-readable: it names the dead letter's reason

    def test_credentials_refused_after_a_fresh_token_are_an_auth_error(
        self, connector, mock
    ) -> None:
        mock.add(self.create_transfer_method, self.create_transfer_url, **self.error_answer(401))
        with pytest.raises(AuthError):
            connector.create_transfer(TRANSFER, "key-1")
        assert len(self._writes(mock)) == 2  # once more with a fresh token, then no more

    def test_paging_reads_every_transfer_once_oldest_first(self, connector, mock) -> None:
        pages = [[("t-1", 60), ("t-2", 15)], [("t-3", 90), ("t-4", 30)], [("t-5", 45)]]
        self.arrange_transfer_pages(mock, pages)
        seen: list[tuple[str, int]] = []
        cursor: str | None = None
        for _ in range(20):  # a connector whose cursor never ends fails here, not forever
            page = connector.list_transfers(cursor, 2)
            seen += [(t.id, t.minutes) for t in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert cursor is None
        assert seen == [item for page in pages for item in page]

    def test_an_event_has_one_id_however_often_it_comes(self, connector, mock) -> None:
        headers, body = self.arrange_transfer_event(mock, "t-1", 90)
        first = connector.parse_callback(headers, body)
        again = connector.parse_callback(headers, body)
        other_headers, other_body = self.arrange_transfer_event(mock, "t-2", 30)
        other = connector.parse_callback(other_headers, other_body)
        assert first.event_id == again.event_id
        assert other.event_id != first.event_id
        assert first.type == "transfer.completed"
        assert first.transfer is not None
        assert (first.transfer.id, first.transfer.minutes) == ("t-1", 90)

    def test_a_token_store_spares_another_process_its_token_request(self, mock) -> None:
        # A connector handed its token source, or needing none, puts nothing: there is nothing
        # to share. One that fetches its own must find it again on a second build.
        store = MemoryTokenStore()
        config = dataclasses.replace(self.make_config(), token_store=store)
        self.arrange_transfer_created(mock, "remote-1")
        for key in ("key-1", "key-2"):  # two processes: two connectors on one store
            built = self.connector_class(config)
            try:
                built.create_transfer(TRANSFER, key)
            finally:
                built.close()
        assert (store.puts, store.hits) in {(0, 0), (1, 1)}

    def test_a_refused_token_leaves_the_token_store(self, mock) -> None:
        store = MemoryTokenStore()
        built = self.connector_class(dataclasses.replace(self.make_config(), token_store=store))
        mock.add(self.create_transfer_method, self.create_transfer_url, **self.error_answer(401))
        try:
            with pytest.raises(AuthError):
                built.create_transfer(TRANSFER, "key-1")
        finally:
            built.close()
        assert len(self._writes(mock)) == 2
        assert store.discards == (1 if store.puts else 0)

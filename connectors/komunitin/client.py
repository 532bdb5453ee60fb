"""The Komunitin accounting API's operations used by the connector, over the shared HTTP client.

Bearer tokens carry the scope ``komunitin_accounting``. They come from the token source the
gateway hands in (``PlatformConfig.token_source``: JWTs minted from its own issuer) or, failing
that, from client credentials against ``token_url``. Request bodies go as ``application/json``,
the type the published contract declares for every request (the service accepts it and
``application/vnd.api+json`` alike); answers are JSON:API (``application/vnd.api+json``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.errors import PermanentError
from connectors.http import HttpClient, TokenSource, segment, timeout_from_options
from connectors.interface import PlatformConfig
from connectors.tokens import ClientCredentialsTokenSource

__all__ = ["SCOPE", "KomunitinClient", "token_source_for"]

SCOPE = "komunitin_accounting"
JSON_API = "application/vnd.api+json"


def token_source_for(config: PlatformConfig, plain: HttpClient) -> TokenSource:
    """The gateway's token source when it built one, else client credentials at ``token_url``."""
    if config.token_source is not None:
        return config.token_source
    token_url = config.options.get("token_url")
    if not token_url:
        raise PermanentError(
            "Komunitin needs tokens: the option token_source=gateway (JWTs the gateway mints) "
            "or token_url (client credentials)",
            "misconfigured",
        )
    scopes = tuple(config.options.get("scopes") or (SCOPE,))
    return ClientCredentialsTokenSource(
        plain,
        str(token_url),
        str(config.credentials.get("client_id") or ""),
        str(config.credentials.get("client_secret") or ""),
        scopes,
        store=config.token_store,
    )


class KomunitinClient:
    """One Komunitin currency (``options["currency"]``, e.g. ``"TEST"``) of one service."""

    def __init__(self, config: PlatformConfig) -> None:
        code = str(config.options.get("currency") or "")
        if not code:
            raise PermanentError("Komunitin needs the currency code option", "misconfigured")
        self.currency_code = code
        timeout = timeout_from_options(config.options)
        plain = HttpClient(config.base_url, timeout=timeout)
        self.tokens = token_source_for(config, plain)
        self.http = HttpClient(
            config.base_url,
            timeout=timeout,
            token_source=self.tokens,
            default_headers={"Accept": JSON_API},
            session=plain.session,
        )
        self._prefix = segment(code)

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.http.request(method, f"{self._prefix}/{path}", **kwargs).body

    def get_currency(self) -> Any:
        """GET /{code}/currency."""
        return self._request("GET", "currency")

    def create_account(self, document: Mapping[str, Any]) -> Any:
        """POST /{code}/accounts."""
        return self._request("POST", "accounts", json=document)

    def get_account(self, account_id: str) -> Any:
        """GET /{code}/accounts/{id}."""
        return self._request("GET", f"accounts/{segment(account_id)}")

    def create_transfer(self, document: Mapping[str, Any]) -> Any:
        """POST /{code}/transfers."""
        return self._request("POST", "transfers", json=document)

    def get_transfer(self, transfer_id: str) -> Any:
        """GET /{code}/transfers/{id}."""
        return self._request("GET", f"transfers/{segment(transfer_id)}")

    def patch_transfer(self, transfer_id: str, document: Mapping[str, Any]) -> Any:
        """PATCH /{code}/transfers/{id}."""
        return self._request("PATCH", f"transfers/{segment(transfer_id)}", json=document)

    def list_transfers(self, offset: int, size: int) -> Any:
        """GET /{code}/transfers, oldest first, ``size`` rows after the first ``offset``."""
        # Oldest first, so that transfers added meanwhile land after the offset, not before it.
        params = {"page[after]": offset, "page[size]": size, "sort": "created"}
        return self._request("GET", "transfers", params=params)

    def close(self) -> None:
        """Close the pooled connections."""
        self.http.close()

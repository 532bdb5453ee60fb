"""The partner API's operations, one method each, over the shared HTTP client.

Methods send exactly what the contract (``timebank-partner-api.yaml``) defines and return the
decoded JSON; turning it into plain data is ``schemas``' job, deciding what a failure means is the
connector's. Every write carries the caller's Idempotency-Key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connectors.errors import AuthError, PermanentError
from connectors.http import HttpClient, segment, timeout_from_options
from connectors.interface import PlatformConfig
from connectors.tokens import ClientCredentialsTokenSource

__all__ = ["PARTNER_SCOPES", "TimeRepublikClient"]

PARTNER_SCOPES = ("members:write", "transfers:write", "transfers:read")
MAX_PAGE = 500  # the contract's largest `limit`


class TimeRepublikClient:
    """The partner API of one platform, authenticated with client credentials."""

    def __init__(self, config: PlatformConfig) -> None:
        credentials, options = config.credentials, config.options
        self.client_id = str(credentials.get("client_id") or "")
        client_secret = str(credentials.get("client_secret") or "")
        timeout = timeout_from_options(options)
        self._plain = HttpClient(config.base_url, timeout=timeout)
        self.token_url = str(options.get("token_url") or self._plain.url("oauth/token"))
        self.authorize_url = str(options.get("authorize_url") or self._plain.url("oauth/authorize"))
        scopes = options.get("scopes") or PARTNER_SCOPES
        self.tokens = ClientCredentialsTokenSource(
            self._plain,
            self.token_url,
            self.client_id,
            client_secret,
            tuple(scopes),
            store=config.token_store,
        )
        self._client_secret = client_secret
        # One pooled session for the token endpoint and the API.
        self.http = HttpClient(
            config.base_url, timeout=timeout, token_source=self.tokens, session=self._plain.session
        )

    # Members

    def create_member(self, body: Mapping[str, Any], key: str) -> Any:
        """POST /v1/members."""
        return self.http.request("POST", "v1/members", json=body, headers=_idem(key)).body

    def list_members(
        self, cursor: str | None = None, limit: int = MAX_PAGE, external_id: str | None = None
    ) -> Any:
        """GET /v1/members, one page."""
        params: dict[str, Any] = {"limit": _limit(limit)}
        if cursor:
            params["cursor"] = cursor
        if external_id:
            params["external_id"] = external_id
        return self.http.request("GET", "v1/members", params=params).body

    def get_member(self, member_id: str) -> Any:
        """GET /v1/members/{member_id}."""
        return self.http.request("GET", f"v1/members/{segment(member_id)}").body

    def update_member(self, member_id: str, body: Mapping[str, Any], key: str) -> Any:
        """PATCH /v1/members/{member_id}."""
        path = f"v1/members/{segment(member_id)}"
        return self.http.request("PATCH", path, json=body, headers=_idem(key)).body

    def delete_member(self, member_id: str, key: str) -> None:
        """DELETE /v1/members/{member_id}."""
        self.http.request("DELETE", f"v1/members/{segment(member_id)}", headers=_idem(key))

    # Wallets and transfers

    def get_wallet(self, wallet_id: str) -> Any:
        """GET /v1/wallets/{wallet_id}."""
        return self.http.request("GET", f"v1/wallets/{segment(wallet_id)}").body

    def create_transfer(self, body: Mapping[str, Any], key: str) -> Any:
        """POST /v1/transfers."""
        return self.http.request("POST", "v1/transfers", json=body, headers=_idem(key)).body

    def list_transfers(
        self,
        cursor: str | None = None,
        limit: int = 100,
        *,
        external_reference: str | None = None,
        wallet_id: str | None = None,
    ) -> Any:
        """GET /v1/transfers, one page, oldest first."""
        params: dict[str, Any] = {"limit": _limit(limit)}
        if cursor:
            params["cursor"] = cursor
        if external_reference:
            params["external_reference"] = external_reference
        if wallet_id:
            params["wallet_id"] = wallet_id
        return self.http.request("GET", "v1/transfers", params=params).body

    def reverse_transfer(self, transfer_id: str, key: str) -> Any:
        """POST /v1/transfers/{transfer_id}/reversal."""
        path = f"v1/transfers/{segment(transfer_id)}/reversal"
        return self.http.request("POST", path, headers=_idem(key)).body

    # Webhooks and member linking

    def put_webhook_endpoint(
        self, url: str, events: Sequence[str] = (), secret: str | None = None
    ) -> Any:
        """PUT /v1/webhook-endpoints."""
        body: dict[str, Any] = {"url": url}
        if events:
            body["events"] = list(events)
        if secret:
            body["secret"] = secret  # a sandbox extension; the contract's server makes one
        return self.http.request("PUT", "v1/webhook-endpoints", json=body).body

    def exchange_code(self, code: str, redirect_uri: str, code_verifier: str) -> str:
        """POST /oauth/token (authorization_code): the member's access token."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        reply = self.http.request(
            "POST",
            self.token_url,
            form=form,
            auth=(self.client_id, self._client_secret),
            authenticated=False,
        )
        token = reply.body.get("access_token") if isinstance(reply.body, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthError("token endpoint answered without an access_token", "bad_token")
        return token

    def me(self, member_token: str) -> Any:
        """GET /v1/me with a member's own token."""
        headers = {"Authorization": f"Bearer {member_token}"}
        return self.http.request("GET", "v1/me", headers=headers, authenticated=False).body

    def close(self) -> None:
        """Close the pooled connections."""
        self.http.close()


def _idem(key: str) -> dict[str, str]:
    if not key or len(key) > 255:
        raise PermanentError("an Idempotency-Key has 1 to 255 characters", "validation_error")
    return {"Idempotency-Key": key}


def _limit(limit: int) -> int:
    return max(1, min(int(limit), MAX_PAGE))

"""The TimeRepublik connector: the partner contract behind the ``Connector`` interface.

Amounts are already minutes in the partner contract, so nothing converts here. Two conflicts are
resolved on the spot because both mean "you did this already": a 409 ``member_exists`` for a
member the partner registered itself (same ``external_id``), and a 409 ``duplicate_reference``
for a transfer identical to ours. Any other conflict is raised as ``ConflictError`` naming the
existing resource when the platform or a lookup tells us which it is.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from connectors.errors import ConflictError, PermanentError
from connectors.interface import (
    AccountLinking,
    Balance,
    CallbackDecoding,
    CallbackEvent,
    Connector,
    MemberData,
    OAuthSettings,
    PlatformConfig,
    RemoteMember,
    RemoteTransfer,
    TransferData,
    TransferPage,
    WebhookEndpoint,
    WebhookRegistration,
)
from connectors.timerepublik import schemas
from connectors.timerepublik.client import MAX_PAGE, TimeRepublikClient

__all__ = ["TimeRepublikConnector"]

log = logging.getLogger(__name__)

# find_member pages through the partner's members (the contract has no email filter); this bounds
# the walk: 20 pages of 500 members.
DEFAULT_FIND_MAX_PAGES = 20


class TimeRepublikConnector(Connector, AccountLinking, WebhookRegistration, CallbackDecoding):
    """TimeRepublik (and the sandbox timebank) through the partner API.

    Options: ``token_url``, ``authorize_url`` (default: under the base URL), ``scopes``,
    ``connect_timeout``/``read_timeout`` (seconds), ``find_member_max_pages``.
    Credentials: ``client_id``, ``client_secret``.
    """

    key = "timerepublik"

    def __init__(self, config: PlatformConfig) -> None:
        super().__init__(config)
        self.client = TimeRepublikClient(config)
        self.find_max_pages = int(
            config.options.get("find_member_max_pages", DEFAULT_FIND_MAX_PAGES)
        )

    def register_member(self, member: MemberData, idempotency_key: str) -> RemoteMember:
        """POST /v1/members; a member we registered before under another key is returned."""
        try:
            document = self.client.create_member(schemas.member_in(member), idempotency_key)
        except ConflictError as exc:
            if exc.code != "member_exists":
                raise
            found = self._find_record(member.email)
            if found is not None and found.external_id == member.external_id:
                return found.member
            existing = found.member.id if found is not None else exc.existing_id
            raise ConflictError(
                str(exc), existing, code="member_exists", status=exc.status, problem=exc.problem
            ) from exc
        return schemas.parse_member(document).member

    def update_member(
        self, remote_id: str, member: MemberData, idempotency_key: str
    ) -> RemoteMember:
        """PATCH /v1/members/{id} with the fields the contract lets partners change."""
        document = self.client.update_member(
            remote_id, schemas.member_patch(member), idempotency_key
        )
        return schemas.parse_member(document).member

    def erase_member(self, remote_id: str, idempotency_key: str) -> None:
        """DELETE /v1/members/{id}; a member the platform no longer knows counts as erased."""
        self._delete_member(remote_id, idempotency_key)

    def _delete_member(self, remote_id: str, idempotency_key: str) -> None:
        try:
            self.client.delete_member(remote_id, idempotency_key)
        except PermanentError as exc:
            if exc.status != 404:
                raise
            log.info("member %s was already gone on %s", remote_id, self.config.name)

    def find_member(self, email: str) -> RemoteMember | None:
        """The partner's member with this email (case-insensitive), walking the member pages."""
        found = self._find_record(email)
        return found.member if found is not None else None

    def _find_record(self, email: str) -> schemas.MemberRecord | None:
        wanted = email.strip().casefold()
        cursor: str | None = None
        for _ in range(self.find_max_pages):
            records, cursor = schemas.parse_member_page(
                self.client.list_members(cursor=cursor, limit=MAX_PAGE)
            )
            for record in records:
                if record.member.email and record.member.email.casefold() == wanted:
                    return record
            if cursor is None:
                return None
        log.warning(
            "find_member gave up after %d pages on %s", self.find_max_pages, self.config.name
        )
        return None

    def get_balance(self, wallet_id: str) -> Balance:
        """GET /v1/wallets/{id}."""
        read_at = datetime.now(UTC)
        wallet_id_read, minutes = schemas.parse_wallet_minutes(self.client.get_wallet(wallet_id))
        return Balance(wallet_id=wallet_id_read, minutes=minutes, as_of=read_at)

    def create_transfer(self, transfer: TransferData, idempotency_key: str) -> RemoteTransfer:
        """POST /v1/transfers; our own transfer found under its reference counts as created."""
        _check_minutes(transfer.minutes)
        try:
            document = self.client.create_transfer(schemas.transfer_in(transfer), idempotency_key)
        except ConflictError as exc:
            if exc.code != "duplicate_reference":
                raise
            existing = self._transfer_by_reference(transfer.external_reference)
            if existing is not None and _same_transfer(existing, transfer):
                return existing
            raise ConflictError(
                str(exc),
                existing.id if existing is not None else exc.existing_id,
                code=exc.code,
                status=exc.status,
                problem=exc.problem,
            ) from exc
        return schemas.parse_transfer(document)

    def _transfer_by_reference(self, reference: str) -> RemoteTransfer | None:
        page = schemas.parse_transfer_page(
            self.client.list_transfers(limit=1, external_reference=reference)
        )
        return next((t for t in page.items if t.external_reference == reference), None)

    def reverse_transfer(self, remote_transfer_id: str, idempotency_key: str) -> RemoteTransfer:
        """POST /v1/transfers/{id}/reversal; returns the reversing transfer."""
        return schemas.parse_transfer(
            self.client.reverse_transfer(remote_transfer_id, idempotency_key)
        )

    def list_transfers(self, since_cursor: str | None, limit: int) -> TransferPage:
        """GET /v1/transfers from ``since_cursor``, oldest first."""
        return schemas.parse_transfer_page(
            self.client.list_transfers(cursor=since_cursor, limit=limit)
        )

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> CallbackEvent:
        """Decode the contract's Event (transfer.completed/reversed, member.updated/erased)."""
        return self.decode_callback(self.config, headers, body)

    @classmethod
    def decode_callback(
        cls, config: PlatformConfig, headers: Mapping[str, str], body: bytes
    ) -> CallbackEvent:
        """The contract's Event, every field checked; it needs no credentials."""
        return schemas.parse_event(_json(body), headers)

    def oauth_settings(self) -> OAuthSettings:
        """The platform's authorization endpoints for linking an existing account."""
        return OAuthSettings(
            authorize_url=self.client.authorize_url,
            token_url=self.client.token_url,
            scopes=("profile",),
            client_id=self.client.client_id,
        )

    def link_member(self, code: str, redirect_uri: str, code_verifier: str) -> RemoteMember:
        """Exchange the member's code (PKCE) and read the account it authorized (/v1/me)."""
        token = self.client.exchange_code(code, redirect_uri, code_verifier)
        return schemas.parse_member(self.client.me(token)).member

    def revoke_link(self, remote_id: str, idempotency_key: str) -> None:
        """DELETE /v1/members/{id}: for an account its member linked, the contract ends our link
        (and the member tokens it issued us) and leaves the account alone."""
        self._delete_member(remote_id, idempotency_key)

    def register_webhook_endpoint(
        self, url: str, events: Sequence[str] = (), secret: str | None = None
    ) -> WebhookEndpoint:
        """PUT /v1/webhook-endpoints; the answer carries the signing secret."""
        return schemas.parse_webhook_endpoint(self.client.put_webhook_endpoint(url, events, secret))

    def close(self) -> None:
        """Close the pooled connections."""
        self.client.close()


def _check_minutes(minutes: int) -> None:
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes <= 0:
        raise PermanentError(
            f"a transfer moves a positive whole number of minutes, not {minutes!r}",
            "validation_error",
        )


def _same_transfer(remote: RemoteTransfer, wanted: TransferData) -> bool:
    return (
        remote.payer_wallet_id == wanted.payer_wallet_id
        and remote.payee_wallet_id == wanted.payee_wallet_id
        and remote.minutes == wanted.minutes
    )


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise PermanentError("callback body is not JSON", "malformed_event") from None

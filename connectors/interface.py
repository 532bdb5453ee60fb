"""The connector interface: plain data in and out, and the operations every platform offers.

A connector knows one external API and nothing of Flask, the database or RQ. Amounts are always
integer minutes here; each connector converts at its edge. Every write takes an idempotency key
(derived by the sync engine from its outbox row) and must be safe to repeat with the same key.
Failures are raised as the typed errors of ``connectors.errors``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from connectors.http import TokenSource
    from connectors.tokens import TokenStore

__all__ = [
    "AccountLinking",
    "Balance",
    "CallbackDecoding",
    "CallbackEvent",
    "Connector",
    "MemberData",
    "OAuthSettings",
    "PlatformConfig",
    "RemoteMember",
    "RemoteTransfer",
    "TransferData",
    "TransferPage",
    "TransferStatus",
    "WebhookEndpoint",
    "WebhookRegistration",
]

TransferStatus = Literal["completed", "reversed"]


@dataclass(frozen=True)
class PlatformConfig:
    """What a connector is built from: a platform's name, API base URL, secrets and options.

    ``token_source`` is a bearer-token source the gateway built for the platform (JWTs it mints
    from its own issuer, when the platform's ``token_source`` option asks for them), or None: a
    connector then gets its tokens itself (client credentials) or needs none. It may be called
    from any thread, with no application context.

    ``token_store`` keeps the tokens a connector obtains itself (client credentials) where
    other processes find them: pass it to ``ClientCredentialsTokenSource``. None: each process
    asks for its own. Like ``token_source``, it may be called from any thread.
    """

    name: str
    base_url: str
    # Kept out of repr so that a config in a log line or traceback shows no secret.
    credentials: Mapping[str, Any] = field(default_factory=dict, repr=False)
    options: Mapping[str, Any] = field(default_factory=dict)
    token_source: TokenSource | None = field(default=None, repr=False, compare=False)
    token_store: TokenStore | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class MemberData:
    """A member as we send it to a platform (only the fields the member consented to)."""

    external_id: str
    email: str
    display_name: str
    locale: str = "it"
    skills: Sequence[str] = ()

    def __post_init__(self) -> None:
        # A tuple keeps the frozen dataclass really immutable (and hashable).
        object.__setattr__(self, "skills", tuple(self.skills))


@dataclass(frozen=True)
class RemoteMember:
    """A member's account on a platform: its id, wallet and state."""

    id: str
    wallet_id: str
    status: str  # "active", "suspended" or "erased" (platform words are mapped to these)
    email: str | None = None


@dataclass(frozen=True)
class Balance:
    """A wallet's balance in minutes, as read at ``as_of``."""

    wallet_id: str
    minutes: int
    as_of: datetime


@dataclass(frozen=True)
class TransferData:
    """A transfer we ask a platform to make; ``external_reference`` is our own unique id."""

    payer_wallet_id: str
    payee_wallet_id: str
    minutes: int
    description: str
    external_reference: str
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class RemoteTransfer:
    """A transfer as a platform reports it.

    ``status`` is "completed", or "reversed" once a reversal undid it; a reversal is itself a
    completed transfer whose ``reversal_of`` names the original. ``external_reference`` is None
    for transfers made on the platform itself rather than through us.
    """

    id: str
    payer_wallet_id: str
    payee_wallet_id: str
    minutes: int
    description: str
    external_reference: str | None
    status: TransferStatus
    reversal_of: str | None
    created_at: datetime


@dataclass(frozen=True)
class TransferPage:
    """One page of a transfer listing, oldest first.

    ``next_cursor`` is None on the last page, and only there: a page may come back with no items
    and a cursor (a stretch of entries that are no completed transfers), so read on until the
    cursor is None. To poll for newer transfers later, keep the cursor that fetched the last page:
    listing from it again returns that page's tail plus anything newer, so consumers dedupe by
    transfer id.
    """

    items: tuple[RemoteTransfer, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class CallbackEvent:
    """A verified callback, decoded.

    ``event_id`` is the deduplication key (a platform whose events carry no id gets a derived
    one). ``type`` is one of "transfer.completed", "transfer.reversed", "member.updated",
    "member.erased", or a platform-specific type the core may ignore. For "transfer.reversed",
    ``transfer`` is the reversing transfer: its ``reversal_of`` names the one it undoes.
    """

    event_id: str
    type: str
    occurred_at: datetime
    transfer: RemoteTransfer | None = None
    member: RemoteMember | None = None


@dataclass(frozen=True)
class OAuthSettings:
    """Where a member authorizes us to link an existing account (code + PKCE S256)."""

    authorize_url: str
    token_url: str
    scopes: tuple[str, ...]
    client_id: str = ""


@dataclass(frozen=True)
class WebhookEndpoint:
    """Our callback URL as registered on a platform, and the secret that signs its events."""

    url: str
    secret: str = field(repr=False)
    events: tuple[str, ...] = ()


class Connector(ABC):
    """One external platform's API behind the operations the gateway needs.

    Subclasses set ``key`` (the entry-point name) and are built from a ``PlatformConfig``.
    Instances may be shared between threads of one process (token caches, pooled sessions).
    """

    key: ClassVar[str]
    # Whether the account outlives ``erase_member`` (the platform keeps it, with no personal data
    # or none to begin with): a member who connects again is given that account back, not a
    # second one.
    erase_keeps_account: ClassVar[bool] = False
    # The scopes a token for this platform must carry, when the gateway mints it (the
    # platform's ``scopes`` option overrides them).
    token_scopes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: PlatformConfig) -> None:
        self.config = config

    @classmethod
    def check_config(cls, config: PlatformConfig) -> None:
        """Refuse a configuration this connector cannot work with (``PermanentError``, code
        ``misconfigured``), without calling the platform. By default: build one and close it."""
        cls(config).close()

    @abstractmethod
    def register_member(self, member: MemberData, idempotency_key: str) -> RemoteMember:
        """Create the member's account; ConflictError if the email has one already."""

    @abstractmethod
    def update_member(
        self, remote_id: str, member: MemberData, idempotency_key: str
    ) -> RemoteMember:
        """Send the member's changed profile."""

    @abstractmethod
    def erase_member(self, remote_id: str, idempotency_key: str) -> None:
        """Erase the member's personal data there (already erased counts as done)."""

    @abstractmethod
    def find_member(self, email: str) -> RemoteMember | None:
        """The member with this email among those we can see there, or None."""

    @abstractmethod
    def get_balance(self, wallet_id: str) -> Balance:
        """The wallet's current balance in minutes."""

    @abstractmethod
    def create_transfer(self, transfer: TransferData, idempotency_key: str) -> RemoteTransfer:
        """Make the transfer, once: repeating with the same key returns the same transfer."""

    @abstractmethod
    def reverse_transfer(self, remote_transfer_id: str, idempotency_key: str) -> RemoteTransfer:
        """Undo a completed transfer with an opposite one; returns the reversing transfer."""

    @abstractmethod
    def list_transfers(self, since_cursor: str | None, limit: int) -> TransferPage:
        """Transfers oldest first, from ``since_cursor`` (None: from the beginning)."""

    @abstractmethod
    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> CallbackEvent:
        """Decode a callback whose signature the gateway has verified; PermanentError if bad."""

    @abstractmethod
    def oauth_settings(self) -> OAuthSettings | None:
        """Where members link an existing account, or None if the platform offers no linking."""

    def close(self) -> None:  # noqa: B027 - optional hook, most connectors hold nothing to free
        """Release pooled connections."""


class AccountLinking(ABC):
    """A connector whose platform lets members link an existing account (OAuth code + PKCE)."""

    @abstractmethod
    def link_member(self, code: str, redirect_uri: str, code_verifier: str) -> RemoteMember:
        """Exchange the member's authorization code and return the account it authorized."""

    @abstractmethod
    def revoke_link(self, remote_id: str, idempotency_key: str) -> None:
        """End the link the member authorized: the account stays theirs, and we lose sight of it
        (a link already gone counts as revoked)."""


class CallbackDecoding(ABC):
    """A connector whose callbacks decode from the body alone: no credentials, no network.

    The gateway checks such events against the contract at the door, knowing nothing of the
    platform but its webhook secret; ``parse_callback`` gives the same answer.
    """

    @classmethod
    @abstractmethod
    def decode_callback(
        cls, config: PlatformConfig, headers: Mapping[str, str], body: bytes
    ) -> CallbackEvent:
        """Decode a verified callback; PermanentError if it breaks the contract. A type the
        contract does not know yet comes back as a CallbackEvent with no transfer or member."""


class WebhookRegistration(ABC):
    """A connector that can point the platform's callbacks at the gateway."""

    @abstractmethod
    def register_webhook_endpoint(
        self, url: str, events: Sequence[str] = (), secret: str | None = None
    ) -> WebhookEndpoint:
        """Set our callback URL; returns the endpoint with the secret that will sign events."""

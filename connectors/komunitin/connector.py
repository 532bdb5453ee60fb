"""The Komunitin connector: one currency of a Komunitin accounting service.

What maps to what:
- A member is a Komunitin account owned by a user whose id is our member id (``external_id``);
  member id and wallet id are both the account id. The accounting service keeps no e-mail, name
  or skills (those live in Komunitin's social service, which this connector does not speak), so
  ``update_member`` changes nothing there and returns the account, ``find_member`` returns None,
  and ``erase_member`` is a no-op: the account holds no personal data to erase, and deleting it
  is refused while its balance is not zero and would destroy the wallet's history.
- Transfers get client-chosen ids, a UUID derived from the idempotency key, so a repeated create
  finds the first one: the service answers 400 "already exists", and the connector reads the
  transfer back and carries on from its state. States go new -> submitted -> committed | failed;
  only committed is "completed". Komunitin has no reversal: ``reverse_transfer`` makes the
  opposite transfer, tagged with the original's id (see ``schemas``).
- Amounts convert through the currency's scale and hour rate (see ``units``), exactly or not at
  all. The currency is read once and kept for ``currency_ttl`` seconds (default 300).
- Komunitin's events carry no id: the dedupe key is ``<transfer id>:<state>``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from connectors.errors import AuthError, ConnectorError, PermanentError, RetryableError
from connectors.fields import Malformed, as_mapping, require_datetime, require_str
from connectors.interface import (
    Balance,
    CallbackEvent,
    Connector,
    MemberData,
    OAuthSettings,
    PlatformConfig,
    RemoteMember,
    RemoteTransfer,
    TransferData,
    TransferPage,
)
from connectors.komunitin import schemas
from connectors.komunitin.client import SCOPE, KomunitinClient
from connectors.komunitin.units import CurrencyUnits

__all__ = ["KOMUNITIN_NAMESPACE", "KomunitinConnector", "client_id_for"]

log = logging.getLogger(__name__)

# Fixed forever: changing it would give a retried write a new id, and so a second transfer.
KOMUNITIN_NAMESPACE = uuid.UUID("6f1d2c1e-5b0a-5d7e-9a3c-2f4b8e6d1a90")
DEFAULT_CURRENCY_TTL = 300.0
MAX_PAGE = 100
# Raw pages list_transfers reads past when they hold no committed transfer.
SKIP_PAGES = 5
# Komunitin states a transfer passes through on its way to committed: worth waiting for.
IN_FLIGHT_STATES = ("submitted", "pending", "accepted")
EVENT_STATES = {
    "TransferCommitted": ("committed", "transfer.completed"),
    "TransferPending": ("pending", "transfer.pending"),
    "TransferRejected": ("rejected", "transfer.rejected"),
}
ACCOUNT_STATUSES = {
    "active": "active",
    "disabled": "suspended",
    "suspended": "suspended",
    "deleted": "erased",
}


def client_id_for(idempotency_key: str) -> str:
    """The Komunitin resource id of the write made under ``idempotency_key``."""
    return str(uuid.uuid5(KOMUNITIN_NAMESPACE, idempotency_key))


def _already_exists(error: ConnectorError) -> bool:
    detail = json.dumps(error.problem).lower() if error.problem else str(error).lower()
    return error.status == 400 and "already exist" in detail


class KomunitinConnector(Connector):
    """A Komunitin currency through the accounting API (JSON:API, JWT bearer tokens).

    Options: ``currency`` (its code, required); ``token_source=gateway`` (the gateway hands in
    JWTs it mints) or ``token_url`` (client credentials from ``credentials``); ``scopes``,
    ``currency_ttl``, ``connect_timeout``, ``read_timeout``.
    """

    key = "komunitin"
    erase_keeps_account = True  # erase_member is a no-op: see the module's docstring
    token_scopes = (SCOPE,)

    def __init__(self, config: PlatformConfig) -> None:
        super().__init__(config)
        self.client = KomunitinClient(config)
        self._currency_ttl = float(config.options.get("currency_ttl", DEFAULT_CURRENCY_TTL))
        self._currency: CurrencyUnits | None = None
        self._currency_read_at = 0.0
        self._lock = threading.Lock()

    def currency(self) -> CurrencyUnits:
        """The currency's scale and rate, read at most once per ``currency_ttl``."""
        with self._lock:
            now = time.monotonic()
            if self._currency is None or now - self._currency_read_at >= self._currency_ttl:
                self._currency = schemas.parse_currency(self.client.get_currency())
                self._currency_read_at = now
            return self._currency

    # Members

    def register_member(self, member: MemberData, idempotency_key: str) -> RemoteMember:
        """Create an account owned by the member; a repeated create reads the first back."""
        account_id = client_id_for(idempotency_key)
        document = schemas.account_create_doc(account_id, member.external_id)
        try:
            account = schemas.parse_account(self.client.create_account(document))
        except AuthError:
            raise
        except ConnectorError as exc:
            # A lost answer or a replay: the account may exist under our id already.
            account = self._account_if_exists(account_id, exc)
            if member.external_id not in account.user_ids and account.user_ids:
                raise PermanentError(
                    f"account {account_id} exists for another user", "idempotency_mismatch"
                ) from exc
        return _remote_member(account)

    def _account_if_exists(self, account_id: str, original: ConnectorError) -> schemas.AccountDoc:
        try:
            return schemas.parse_account(self.client.get_account(account_id))
        except ConnectorError:
            raise original from None

    def update_member(
        self, remote_id: str, member: MemberData, idempotency_key: str
    ) -> RemoteMember:
        """Nothing to send (no profile in the accounting service): returns the account."""
        return _remote_member(schemas.parse_account(self.client.get_account(remote_id)))

    def erase_member(self, remote_id: str, idempotency_key: str) -> None:
        """A no-op: the account holds no personal data, and deleting it would lose history."""
        log.info(
            "erase on Komunitin %s: account %s holds no personal data", self.config.name, remote_id
        )

    def find_member(self, email: str) -> RemoteMember | None:
        """Always None: the accounting service knows no e-mail addresses."""
        return None

    def get_balance(self, wallet_id: str) -> Balance:
        """The account's balance in minutes (PermanentError if hidden or not whole minutes)."""
        read_at = datetime.now(UTC)
        account = schemas.parse_account(self.client.get_account(wallet_id))
        if account.balance is None:
            raise PermanentError(f"the balance of {wallet_id} is hidden from us", "forbidden")
        minutes = self.currency().to_minutes(account.balance)
        return Balance(wallet_id=account.id, minutes=minutes, as_of=read_at)

    # Transfers

    def create_transfer(self, transfer: TransferData, idempotency_key: str) -> RemoteTransfer:
        """POST a committed transfer under an id derived from the key; settle its state."""
        if isinstance(transfer.minutes, bool) or transfer.minutes <= 0:
            raise PermanentError(
                "a transfer moves a positive number of minutes", "validation_error"
            )
        amount = self.currency().to_amount(transfer.minutes)
        meta = schemas.meta_with_tag(transfer.description, transfer.external_reference)
        return self._create(
            client_id_for(idempotency_key),
            amount,
            meta,
            transfer.payer_wallet_id,
            transfer.payee_wallet_id,
        )

    def reverse_transfer(self, remote_transfer_id: str, idempotency_key: str) -> RemoteTransfer:
        """Make the opposite transfer of a committed one, tagged as its reversal."""
        original = schemas.parse_transfer(
            as_mapping(self.client.get_transfer(remote_transfer_id), "transfer").get("data")
        )
        if original.state != "committed":
            raise PermanentError(
                f"transfer {remote_transfer_id} is {original.state}, not committed",
                "not_reversible",
            )
        if original.reversal_of:
            raise PermanentError(f"{remote_transfer_id} is itself a reversal", "not_reversible")
        meta = schemas.meta_with_tag(
            f"Reversal of {original.description}".strip(),
            f"reversal-of-{original.id}",
            reversal_of=original.id,
        )
        return self._create(
            client_id_for(idempotency_key),
            original.amount,
            meta,
            original.payee_id,
            original.payer_id,
        )

    def _create(
        self, transfer_id: str, amount: int, meta: str, payer: str, payee: str
    ) -> RemoteTransfer:
        document = schemas.transfer_create_doc(transfer_id, amount, meta, payer, payee)
        try:
            created = self.client.create_transfer(document)
        except PermanentError as exc:
            if not _already_exists(exc):
                raise
            # Komunitin does not replay: the first attempt made it, so read it back.
            created = self.client.get_transfer(transfer_id)
            existing = schemas.parse_transfer(as_mapping(created, "transfer").get("data"))
            if (existing.payer_id, existing.payee_id, existing.amount) != (payer, payee, amount):
                raise PermanentError(
                    f"transfer {transfer_id} exists with other contents", "idempotency_mismatch"
                ) from exc
        return self._settle(schemas.parse_transfer(as_mapping(created, "transfer").get("data")))

    def _settle(self, transfer: schemas.TransferDoc) -> RemoteTransfer:
        if transfer.state == "new":
            # A draft left by an interrupted attempt: submit it as the first attempt meant to.
            patched = self.client.patch_transfer(
                transfer.id, schemas.state_patch_doc(transfer.id, "committed")
            )
            transfer = schemas.parse_transfer(as_mapping(patched, "transfer").get("data"))
        if transfer.state == "committed":
            return self._remote_transfer(transfer)
        if transfer.state in IN_FLIGHT_STATES:
            raise RetryableError(f"transfer {transfer.id} is {transfer.state}", retry_after=5.0)
        raise PermanentError(
            f"transfer {transfer.id} is {transfer.state}", f"transfer_{transfer.state}"
        )

    def _remote_transfer(self, transfer: schemas.TransferDoc) -> RemoteTransfer:
        return RemoteTransfer(
            id=transfer.id,
            payer_wallet_id=transfer.payer_id,
            payee_wallet_id=transfer.payee_id,
            minutes=self.currency().to_minutes(transfer.amount),
            description=transfer.description,
            external_reference=transfer.external_reference,
            status="completed",
            reversal_of=transfer.reversal_of,
            created_at=transfer.created_at,
        )

    def list_transfers(self, since_cursor: str | None, limit: int) -> TransferPage:
        """Committed transfers, oldest first; the cursor is an offset into the full list.

        Offsets shift when rows are added or removed before them, so a page may repeat a
        transfer or miss one: repeats within a page are dropped here, and consumers dedupe by id
        across pages and let the next full pass pick up a skipped transfer.
        """
        offset = _offset(since_cursor)
        size = max(1, min(int(limit), MAX_PAGE))
        seen: dict[str, RemoteTransfer] = {}
        # A page of only drafts and failures would come back empty; read on (a few pages at
        # most) so that an empty page means the end, as consumers expect.
        for _ in range(SKIP_PAGES):
            documents, has_next = schemas.parse_transfer_list(
                self.client.list_transfers(offset, size)
            )
            for document in documents:
                if document.state != "committed" or document.id in seen:
                    continue  # drafts, in-flight and failed transfers moved no hours
                seen[document.id] = self._remote_transfer(document)
            more = has_next if has_next is not None else len(documents) >= size
            offset += len(documents)
            if not documents or not more:
                return TransferPage(tuple(seen.values()), None)
            if seen:
                break
        return TransferPage(tuple(seen.values()), str(offset))

    # Callbacks

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> CallbackEvent:
        """Decode a Komunitin event; a committed transfer is read back (events carry ids only).

        May raise RetryableError or AuthError from that read as well as PermanentError.
        """
        code = "malformed_event"
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            raise Malformed("callback body is not JSON", code) from None
        resource = as_mapping(as_mapping(document, "event", code).get("data"), "event data", code)
        attributes = as_mapping(resource.get("attributes"), "event attributes", code)
        name = require_str(attributes, "name", code)
        occurred = require_datetime(attributes, "time", code)
        if name not in EVENT_STATES:
            # Komunitin publishes more events than transfers (accounts, currencies): the
            # sender expects them acknowledged, and the core stores them as ignored.
            return CallbackEvent(
                event_id=f"{name}:{resource.get('id') or occurred.isoformat()}",
                type=f"komunitin.{name}",
                occurred_at=occurred,
            )
        if require_str(attributes, "code", code) != self.client.currency_code:
            raise Malformed("event is about another currency", code)
        payload = as_mapping(attributes.get("data"), "event payload", code)
        transfer_id = require_str(payload, "transfer", code)
        state, kind = EVENT_STATES[name]
        transfer = None
        if state == "committed":
            fetched = as_mapping(self.client.get_transfer(transfer_id), "transfer").get("data")
            transfer = self._remote_transfer(schemas.parse_transfer(fetched))
        return CallbackEvent(
            event_id=f"{transfer_id}:{state}",
            type=kind,
            occurred_at=occurred,
            transfer=transfer,
        )

    def oauth_settings(self) -> OAuthSettings | None:
        """None: Komunitin accounts are created for members, not linked."""
        return None

    def close(self) -> None:
        """Close the pooled connections."""
        self.client.close()


def _remote_member(account: schemas.AccountDoc) -> RemoteMember:
    # An unknown status is treated as suspended: better no transfers than failing ones.
    status = ACCOUNT_STATUSES.get(account.status, "suspended")
    return RemoteMember(id=account.id, wallet_id=account.id, status=status, email=None)


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        offset = int(cursor)
    except ValueError:
        raise PermanentError(f"{cursor!r} is not a Komunitin cursor", "bad_cursor") from None
    if offset < 0:
        raise PermanentError(f"{cursor!r} is not a Komunitin cursor", "bad_cursor")
    return offset

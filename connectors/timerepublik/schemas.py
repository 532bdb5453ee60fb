"""The partner contract's documents, to and from the connector's plain data.

Outgoing bodies carry only what the contract defines; incoming documents are checked field by
field (``connectors.fields``) so that a drifting platform fails loudly, not with a KeyError.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from connectors.fields import (
    Malformed,
    as_mapping,
    optional_str,
    require_datetime,
    require_int,
    require_str,
    rfc3339,
)
from connectors.interface import (
    CallbackEvent,
    MemberData,
    RemoteMember,
    RemoteTransfer,
    TransferData,
    TransferPage,
    TransferStatus,
    WebhookEndpoint,
)

__all__ = [
    "EVENT_TYPES",
    "MemberRecord",
    "member_in",
    "member_patch",
    "parse_event",
    "parse_member",
    "parse_member_page",
    "parse_transfer",
    "parse_transfer_page",
    "parse_wallet_minutes",
    "parse_webhook_endpoint",
    "transfer_in",
]

LOCALES = ("it", "en")
MEMBER_STATUSES = ("active", "suspended", "erased")
TRANSFER_STATUSES = ("completed", "reversed")
EVENT_TYPES = ("transfer.completed", "transfer.reversed", "member.updated", "member.erased")
# The contract's bounds on a transfer's amount (TransferIn.minutes).
MIN_MINUTES, MAX_MINUTES = 1, 14400
MAX_DISPLAY_NAME, MAX_SKILLS, MAX_SKILL = 120, 30, 60


@dataclass(frozen=True)
class MemberRecord:
    """A member document: the plain ``RemoteMember`` plus the partner's own id for it."""

    member: RemoteMember
    external_id: str | None


def member_in(member: MemberData) -> dict[str, Any]:
    """The MemberIn body for registering ``member``."""
    body: dict[str, Any] = {
        "external_id": member.external_id,
        "email": member.email,
        "display_name": member.display_name,
        "skills": list(member.skills),
    }
    # The contract knows two locales; any other falls back to its default (it).
    if member.locale in LOCALES:
        body["locale"] = member.locale
    return body


def member_patch(member: MemberData) -> dict[str, Any]:
    """The PATCH body for a member: the contract lets partners change only these fields."""
    body: dict[str, Any] = {"display_name": member.display_name, "skills": list(member.skills)}
    if member.locale in LOCALES:
        body["locale"] = member.locale
    return body


def transfer_in(transfer: TransferData) -> dict[str, Any]:
    """The TransferIn body for ``transfer``."""
    body: dict[str, Any] = {
        "payer_wallet_id": transfer.payer_wallet_id,
        "payee_wallet_id": transfer.payee_wallet_id,
        "minutes": transfer.minutes,
        "description": transfer.description,
        "external_reference": transfer.external_reference,
    }
    if transfer.occurred_at is not None:
        body["occurred_at"] = rfc3339(transfer.occurred_at)
    return body


def parse_member(document: Any, code: str = "bad_response") -> MemberRecord:
    """A Member document."""
    obj = as_mapping(document, "member", code)
    status = require_str(obj, "status", code)
    if status not in MEMBER_STATUSES:
        raise Malformed(f"member status {status!r} is not one of {MEMBER_STATUSES}", code)
    member = RemoteMember(
        id=_require_id(obj, "id", code),
        wallet_id=_require_id(obj, "wallet_id", code),
        status=status,
        # An erased member's email is a placeholder, not an address to match on.
        email=optional_str(obj, "email", code) if status != "erased" else None,
    )
    return MemberRecord(member, optional_str(obj, "external_id", code))


def parse_member_page(document: Any) -> tuple[list[MemberRecord], str | None]:
    """A page of members and the cursor of the next one."""
    obj = as_mapping(document, "member page")
    data = obj.get("data")
    if not isinstance(data, list):
        raise Malformed("member page has no data list", "bad_response")
    return [parse_member(item) for item in data], optional_str(obj, "next_cursor")


def parse_transfer(document: Any, code: str = "bad_response") -> RemoteTransfer:
    """A Transfer document."""
    obj = as_mapping(document, "transfer", code)
    status = require_str(obj, "status", code)
    if status not in TRANSFER_STATUSES:
        raise Malformed(f"transfer status {status!r} is not one of {TRANSFER_STATUSES}", code)
    minutes = require_int(obj, "minutes", code)
    if not MIN_MINUTES <= minutes <= MAX_MINUTES:
        raise Malformed(
            f"field 'minutes' is {minutes}, outside the contract's {MIN_MINUTES}..{MAX_MINUTES}",
            code,
        )
    return RemoteTransfer(
        id=_require_id(obj, "id", code),
        payer_wallet_id=_require_id(obj, "payer_wallet_id", code),
        payee_wallet_id=_require_id(obj, "payee_wallet_id", code),
        minutes=minutes,
        description=optional_str(obj, "description", code) or "",
        external_reference=optional_str(obj, "external_reference", code),
        status=cast(TransferStatus, status),  # checked against TRANSFER_STATUSES above
        reversal_of=optional_str(obj, "reversal_of", code),
        created_at=require_datetime(obj, "created_at", code),
    )


def _require_id(obj: Mapping[str, Any], key: str, code: str) -> str:
    """An identifier: a string that is not empty (an empty one would match nothing, for ever)."""
    value = require_str(obj, key, code)
    if not value.strip():
        raise Malformed(f"field {key!r} is empty", code)
    return value


def _check_event_member(obj: Mapping[str, Any], code: str) -> None:
    """The Member fields ``parse_member`` does not read, against the contract."""
    require_datetime(obj, "created_at", code)
    optional_str(obj, "external_id", code)
    optional_str(obj, "email", code)
    name = optional_str(obj, "display_name", code)
    if name is not None and len(name) > MAX_DISPLAY_NAME:
        raise Malformed(f"field 'display_name' is longer than {MAX_DISPLAY_NAME}", code)
    locale = optional_str(obj, "locale", code)
    if locale is not None and locale not in LOCALES:
        raise Malformed(f"field 'locale' is not one of {LOCALES}", code)
    skills = obj.get("skills", [])
    if (
        not isinstance(skills, list)
        or len(skills) > MAX_SKILLS
        or not all(isinstance(s, str) and len(s) <= MAX_SKILL for s in skills)
    ):
        raise Malformed(
            f"field 'skills' is not a list of at most {MAX_SKILLS} strings of {MAX_SKILL}", code
        )


def _check_event_transfer(obj: Mapping[str, Any], code: str) -> None:
    """The Transfer fields ``parse_transfer`` does not read, against the contract."""
    if "occurred_at" in obj and obj["occurred_at"] is not None:
        require_datetime(obj, "occurred_at", code)
    # The description is not bounded here: the partner's own reversals prefix "Reversal of " to
    # a description of up to 500 characters, and the ledger keeps the first 500 anyway.
    optional_str(obj, "description", code)


def parse_transfer_page(document: Any) -> TransferPage:
    """A TransferPage document; a transfer repeated within the page is kept once."""
    obj = as_mapping(document, "transfer page")
    data = obj.get("data")
    if not isinstance(data, list):
        raise Malformed("transfer page has no data list", "bad_response")
    seen: dict[str, RemoteTransfer] = {}
    for item in data:
        transfer = parse_transfer(item)
        seen.setdefault(transfer.id, transfer)
    return TransferPage(tuple(seen.values()), optional_str(obj, "next_cursor"))


def parse_wallet_minutes(document: Any) -> tuple[str, int]:
    """A Wallet document's id and balance in minutes."""
    obj = as_mapping(document, "wallet")
    return require_str(obj, "id"), require_int(obj, "balance_minutes")


def parse_webhook_endpoint(document: Any) -> WebhookEndpoint:
    """The webhook endpoint answer, with its signing secret."""
    obj = as_mapping(document, "webhook endpoint")
    events = obj.get("events") or []
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise Malformed("webhook endpoint events is not a list of strings", "bad_response")
    return WebhookEndpoint(
        url=require_str(obj, "url"), secret=require_str(obj, "secret"), events=tuple(events)
    )


def parse_event(document: Any, headers: Mapping[str, str]) -> CallbackEvent:
    """An Event document; its id must equal the webhook-id header when one is present."""
    code = "malformed_event"
    obj = as_mapping(document, "event", code)
    event_id = require_str(obj, "id", code)
    header_id = {k.lower(): v for k, v in headers.items()}.get("webhook-id")
    if header_id is not None and header_id != event_id:
        raise Malformed("event id differs from the webhook-id header", code)
    kind = require_str(obj, "type", code)
    occurred_at = require_datetime(obj, "created_at", code)
    if kind not in EVENT_TYPES:
        # A type added to the contract after us: acknowledged, and left alone by the core.
        return CallbackEvent(event_id=event_id, type=kind, occurred_at=occurred_at)
    data = as_mapping(obj.get("data"), "event data", code)
    transfer = member = None
    if kind.startswith("transfer."):
        transfer = parse_transfer(data, code)
        _check_event_transfer(data, code)
        if transfer.payer_wallet_id == transfer.payee_wallet_id:
            raise Malformed("the transfer's payer and payee are the same wallet", code)
    else:
        member = parse_member(data, code).member
        _check_event_member(data, code)
    return CallbackEvent(
        event_id=event_id,
        type=kind,
        occurred_at=occurred_at,
        transfer=transfer,
        member=member,
    )

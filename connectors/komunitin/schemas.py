"""Komunitin's JSON:API documents, to and from the connector's plain data.

Komunitin transfers have a free-text ``meta`` and no field for a partner's reference, so the
connector appends a machine tag to it: ``<description> [gw:<reference>]`` or, for a reversal,
``[gw:<reference>;reversal_of=<transfer id>]``. Reading it back gives ``external_reference`` and
``reversal_of``; a transfer made natively on Komunitin has no tag and no reference.
The published contract gives ``meta`` as a string; newer services send ``{"description": ...}``,
so both are read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.fields import (
    Malformed,
    as_mapping,
    optional_str,
    require_datetime,
    require_int,
    require_str,
)
from connectors.komunitin.units import CurrencyUnits

__all__ = [
    "AccountDoc",
    "TransferDoc",
    "account_create_doc",
    "meta_with_tag",
    "parse_account",
    "parse_currency",
    "parse_tag",
    "parse_transfer",
    "parse_transfer_list",
    "state_patch_doc",
    "transfer_create_doc",
]

_TAG = re.compile(r"\s*\[gw:(?P<ref>[^\];]*)(?:;reversal_of=(?P<rev>[^\]]*))?\]\s*$")


@dataclass(frozen=True)
class AccountDoc:
    """An account resource: id, status and balance as a scaled amount (None when hidden)."""

    id: str
    status: str
    balance: int | None
    user_ids: tuple[str, ...]


@dataclass(frozen=True)
class TransferDoc:
    """A transfer resource with its amount still scaled."""

    id: str
    state: str
    amount: int
    payer_id: str
    payee_id: str
    description: str
    external_reference: str | None
    reversal_of: str | None
    created_at: datetime


def meta_with_tag(description: str, reference: str, reversal_of: str | None = None) -> str:
    """``description`` with the machine tag that carries our reference through Komunitin."""
    tag = f"gw:{reference}" + (f";reversal_of={reversal_of}" if reversal_of else "")
    return f"{description} [{tag}]".strip()


def parse_tag(meta: str) -> tuple[str, str | None, str | None]:
    """(description, reference, reversal_of) read from a ``meta`` text."""
    match = _TAG.search(meta)
    if match is None:
        return meta, None, None
    return meta[: match.start()], match.group("ref") or None, match.group("rev") or None


def account_create_doc(account_id: str, user_id: str) -> dict[str, Any]:
    """The POST /{code}/accounts document: a client-chosen id owned by our member's user id."""
    user = {"type": "users", "id": user_id}
    return {
        "data": {
            "type": "accounts",
            "id": account_id,
            "relationships": {"users": {"data": [user]}},
        },
        "included": [user],
    }


def transfer_create_doc(
    transfer_id: str, amount: int, meta: str, payer_id: str, payee_id: str
) -> dict[str, Any]:
    """The POST /{code}/transfers document, asking for a committed transfer in one step."""
    return {
        "data": {
            "type": "transfers",
            "id": transfer_id,
            "attributes": {"amount": amount, "meta": meta, "state": "committed"},
            "relationships": {
                "payer": {"data": {"type": "accounts", "id": payer_id}},
                "payee": {"data": {"type": "accounts", "id": payee_id}},
            },
        }
    }


def state_patch_doc(transfer_id: str, state: str) -> dict[str, Any]:
    """The PATCH /{code}/transfers/{id} document moving a transfer to ``state``."""
    return {"data": {"type": "transfers", "id": transfer_id, "attributes": {"state": state}}}


def _data(document: Any, what: str) -> Mapping[str, Any]:
    return as_mapping(as_mapping(document, what).get("data"), f"{what} data")


def parse_currency(document: Any) -> CurrencyUnits:
    """The currency resource's code, scale and rate."""
    attributes = as_mapping(_data(document, "currency").get("attributes"), "currency attributes")
    rate = as_mapping(attributes.get("rate") or {"n": 1, "d": 1}, "currency rate")
    return CurrencyUnits(
        code=require_str(attributes, "code"),
        scale=require_int(attributes, "scale"),
        rate_n=require_int(rate, "n"),
        rate_d=require_int(rate, "d"),
    )


def parse_account(document: Any) -> AccountDoc:
    """An account resource from a single-resource document."""
    data = _data(document, "account")
    attributes = as_mapping(data.get("attributes") or {}, "account attributes")
    balance = attributes.get("balance")
    relationships = data.get("relationships")
    users = relationships.get("users") if isinstance(relationships, Mapping) else None
    items = users.get("data") if isinstance(users, Mapping) else None
    user_ids = tuple(
        str(item["id"]) for item in items or [] if isinstance(item, Mapping) and "id" in item
    )
    return AccountDoc(
        id=require_str(data, "id"),
        status=optional_str(attributes, "status") or "active",
        balance=None if balance is None else require_int(attributes, "balance"),
        user_ids=user_ids,
    )


def _relationship_id(relationships: Mapping[str, Any], name: str, code: str) -> str:
    related = as_mapping(relationships.get(name), f"relationship {name}", code)
    return require_str(
        as_mapping(related.get("data"), f"relationship {name} data", code), "id", code
    )


def _meta_text(attributes: Mapping[str, Any], code: str) -> str:
    meta = attributes.get("meta")
    if meta is None:
        return ""
    if isinstance(meta, str):
        return meta
    if isinstance(meta, Mapping):
        return optional_str(meta, "description", code) or ""
    raise Malformed("transfer meta is neither text nor an object", code)


def parse_transfer(resource: Any, code: str = "bad_response") -> TransferDoc:
    """A transfer resource object (the ``data`` of a document, or an item of a list)."""
    obj = as_mapping(resource, "transfer", code)
    attributes = as_mapping(obj.get("attributes"), "transfer attributes", code)
    relationships = as_mapping(obj.get("relationships"), "transfer relationships", code)
    description, reference, reversal_of = parse_tag(_meta_text(attributes, code))
    return TransferDoc(
        id=require_str(obj, "id", code),
        state=require_str(attributes, "state", code),
        amount=require_int(attributes, "amount", code),
        payer_id=_relationship_id(relationships, "payer", code),
        payee_id=_relationship_id(relationships, "payee", code),
        description=description,
        external_reference=reference,
        reversal_of=reversal_of,
        created_at=require_datetime(attributes, "created", code),
    )


def parse_transfer_list(document: Any) -> tuple[list[TransferDoc], bool | None]:
    """A transfer collection and whether it links a next page (None: no links given)."""
    obj = as_mapping(document, "transfer list")
    data = obj.get("data")
    if not isinstance(data, list):
        raise Malformed("transfer list has no data array", "bad_response")
    links = obj.get("links")
    has_next = bool(links.get("next")) if isinstance(links, Mapping) else None
    return [parse_transfer(item) for item in data], has_next

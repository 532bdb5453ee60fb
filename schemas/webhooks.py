"""Events the gateway pushes to webhook subscriptions: one schema per event type.

Each event is ``{"id", "type", "timestamp", "data"}``, sent as a Standard Webhooks message
(``webhook-id`` is the event's ``id``). ``EVENT_SCHEMAS`` maps each type to its schema; the
OpenAPI document lists them under ``webhooks``.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from schemas.vocabulary import WEBHOOK_EVENT_TYPES

_ID = {"description": "A gateway id (UUID)."}


class _Strict(Schema):
    class Meta:
        ordered = True


# -- what each event's ``data`` holds -----------------------------------------------------------


_ERASED = {"description": "null when the member was erased before the event was sent."}


class MemberCreatedData(_Strict):
    """A member who just signed up (or whom an operator created)."""

    member_id = fields.String(required=True, metadata={"description": "The ID token's `sub`."})
    email = fields.String(required=True, allow_none=True, metadata=_ERASED)
    display_name = fields.String(required=True, allow_none=True, metadata=_ERASED)
    locale = fields.String(required=True, metadata={"description": "`it` or `en`."})
    municipio = fields.Integer(required=True, allow_none=True, metadata=_ERASED)
    verified = fields.Boolean(required=True, metadata={"description": "Address confirmed."})
    created_at = fields.DateTime(required=True, allow_none=True)


class MemberVerifiedData(_Strict):
    """A member who confirmed their address."""

    member_id = fields.String(required=True, metadata=_ID)
    email = fields.String(required=True, allow_none=True, metadata=_ERASED)
    verified_at = fields.DateTime(required=True, allow_none=True)


class MemberDeletedData(_Strict):
    """A member whose data was erased: only the id, nothing else about them."""

    member_id = fields.String(required=True, metadata=_ID)


class PlatformRef(_Strict):
    """A partner timebank."""

    id = fields.String(required=True, metadata=_ID)
    name = fields.String(required=True, metadata={"description": "Its slug, e.g. `sandbox`."})
    display_name = fields.String(required=True)


class PlatformLinkedData(_Strict):
    """A member's account on a timebank is ready (registered there, or linked by them)."""

    member_id = fields.String(required=True, metadata=_ID)
    platform = fields.Nested(PlatformRef, required=True)
    linked_via = fields.String(required=True, validate=validate.OneOf(("registration", "oauth")))


class PlatformUnlinkedData(_Strict):
    """A member left a timebank (withdrew consent, or was erased)."""

    member_id = fields.String(required=True, metadata=_ID)
    platform = fields.Nested(PlatformRef, required=True)


class TransactionData(_Strict):
    """A transaction, enough to record it without asking the API."""

    id = fields.String(required=True, metadata=_ID)
    reference = fields.String(
        required=True,
        metadata={
            "description": "`gw-txn-<id>` for ours; the partner's transfer id for an import."
        },
    )
    kind = fields.String(required=True, metadata={"description": "transfer, desk, help, reversal…"})
    description = fields.String(required=True)
    minutes = fields.Integer(required=True, metadata={"description": "The amount moved."})
    payer_account_id = fields.String(required=True, allow_none=True)
    payee_account_id = fields.String(required=True, allow_none=True)
    payer_member_id = fields.String(required=True, allow_none=True)
    payee_member_id = fields.String(required=True, allow_none=True)
    platform = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The timebank it came from (imports), else null."},
    )
    reversal_of = fields.String(
        required=True, allow_none=True, metadata={"description": "The transaction it undoes."}
    )
    occurred_at = fields.DateTime(required=True)
    created_at = fields.DateTime(required=True)


class BalanceChangedData(_Strict):
    """A member's new balance after a transaction, as the API reports accounts."""

    member_id = fields.String(required=True, metadata=_ID)
    account_id = fields.String(required=True, metadata=_ID)
    balance_minutes = fields.Integer(required=True)
    credit_limit_minutes = fields.Integer(required=True, allow_none=True)
    available_minutes = fields.Integer(required=True, allow_none=True)
    transaction_id = fields.String(required=True, metadata=_ID)


# -- the events ---------------------------------------------------------------------------------


def _event(event_type: str, data: type[Schema], doc: str) -> type[Schema]:
    """The schema of one event type: the common envelope around its ``data``."""
    attributes: dict[str, Any] = {
        "id": fields.String(
            required=True,
            metadata={
                "description": "`evt_...`: the `webhook-id` header too; the same on every retry, "
                "so deduplicate on it."
            },
        ),
        "type": fields.String(required=True, validate=validate.OneOf((event_type,))),
        "timestamp": fields.DateTime(required=True, metadata={"description": "When it happened."}),
        "data": fields.Nested(data, required=True),
        "__doc__": doc,
        "__module__": __name__,
    }
    return type(_class_name(event_type), (_Strict,), attributes)


def _class_name(event_type: str) -> str:
    return "".join(part.capitalize() for part in event_type.split(".")) + "Event"


_DATA: dict[str, tuple[type[Schema], str]] = {
    "member.created": (MemberCreatedData, "A member signed up."),
    "member.verified": (MemberVerifiedData, "A member confirmed their address."),
    "member.deleted": (MemberDeletedData, "A member's data was erased."),
    "platform.linked": (PlatformLinkedData, "A member's account on a timebank is ready."),
    "platform.unlinked": (PlatformUnlinkedData, "A member left a timebank."),
    "transaction.posted": (TransactionData, "A transaction was posted here (API, site)."),
    "transaction.imported": (TransactionData, "A transaction arrived from a partner timebank."),
    "transaction.reversed": (TransactionData, "A transaction was reversed; this is the reversal."),
    "balance.changed": (BalanceChangedData, "A member's balance changed."),
}

EVENT_SCHEMAS: dict[str, type[Schema]] = {
    event_type: _event(event_type, *_DATA[event_type]) for event_type in WEBHOOK_EVENT_TYPES
}

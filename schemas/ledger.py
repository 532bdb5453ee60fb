"""Payloads of the hour API: accounts, transactions, statements, organizations, the member."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

MAX_MINUTES = 14_400  # ten days of hours: more is a typing mistake, not an exchange
EARLIEST_OCCURRED_AT = datetime(2000, 1, 1, tzinfo=UTC)
# A clock a little ahead on the website's side is not an error; a date next week is.
FUTURE_TOLERANCE = timedelta(hours=1)

_UUID_EXAMPLE = "0b6f2c1e-5d7a-4c3e-9a51-2f0d8e4b7c19"


class _Links(Schema):
    self_link = fields.String(
        data_key="self", required=True, metadata={"description": "This resource."}
    )


# -- requests -----------------------------------------------------------------------------------


class PartySchema(Schema):
    """Who pays or is paid: exactly one of a member, an organization or an account."""

    # JSON Schema keywords the OpenAPI document adds: marshmallow checks the same below.
    OPENAPI: ClassVar[dict[str, Any]] = {"minProperties": 1, "maxProperties": 1}

    member_id = fields.UUID(metadata={"description": "A member (their account is used)."})
    organization_id = fields.UUID(
        metadata={"description": "An organization, e.g. a cooperative giving desks."}
    )
    account_id = fields.UUID(metadata={"description": "A member's or organization's account."})

    @validates_schema
    def _exactly_one(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if len(data) != 1:
            raise ValidationError(
                "Give exactly one of member_id, organization_id or account_id.", "_schema"
            )


class TransactionCreateSchema(Schema):
    """A transaction to post: the payer gives ``minutes`` to the payee.

    The payer is whoever receives the help or uses the desk: "member X used a desk at cooperative
    Y for 3 hours" is payer X, payee Y, kind desk, 180 minutes.
    """

    payer = fields.Nested(PartySchema, required=True)
    payee = fields.Nested(PartySchema, required=True)
    minutes = fields.Integer(
        strict=True,
        required=True,
        validate=validate.Range(min=1, max=MAX_MINUTES),
        metadata={"description": "Whole minutes, 1 to 14400.", "example": 180},
    )
    kind = fields.String(
        required=True,
        validate=validate.OneOf(["desk", "help", "transfer"]),
        metadata={
            "description": "desk: a member uses an organization's desk; help: one member helps "
            "another (the helped member pays); transfer: any other exchange.",
            "example": "desk",
        },
    )
    description = fields.String(
        load_default="",
        validate=validate.Length(max=500),
        metadata={"example": "Scrivania alla cooperativa, mattina"},
    )
    occurred_at = fields.AwareDateTime(
        load_default=None,
        allow_none=True,
        metadata={"description": "When the exchange happened (default: now); with a zone."},
    )

    @validates("occurred_at")
    def _plausible_time(self, value: datetime | None, **_kwargs: Any) -> None:
        if value is None:
            return
        try:
            instant = value.astimezone(UTC)
        except OverflowError:
            instant = None
        if instant is None or not (
            EARLIEST_OCCURRED_AT <= instant <= datetime.now(UTC) + FUTURE_TOLERANCE
        ):
            raise ValidationError("Must be after 2000-01-01 and not in the future.")


class ReversalCreateSchema(Schema):
    """Why a transaction is reversed (a correction is a reversal, never an edit)."""

    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={"example": "Registrata due volte per errore"},
    )


class OrganizationCreateSchema(Schema):
    """A new organization (its account is created with it)."""

    name = fields.String(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={"example": "Cooperativa Sociale Il Grillo"},
    )
    kind = fields.String(
        load_default="cooperative", validate=validate.OneOf(["cooperative", "company"])
    )
    municipio = fields.Integer(
        strict=True,
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=1, max=9),
        metadata={"description": "Municipio of Milan, 1 to 9.", "example": 4},
    )
    credit_limit_minutes = fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(min=-144_000, max=0),
        metadata={
            "description": "Lowest balance allowed; omitted: the default (-600); null: no limit.",
            "example": -600,
        },
    )

    @validates("name")
    def _not_blank(self, value: str, **_kwargs: Any) -> None:
        if not value.strip():
            raise ValidationError("Must not be blank.")


class StatementQuerySchema(Schema):
    """Paging of a statement."""

    cursor = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "The next_cursor of the previous page."},
    )
    limit = fields.Integer(
        load_default=50,
        validate=validate.Range(min=1, max=200),
        metadata={"description": "Entries per page, 1 to 200."},
    )


# -- responses ----------------------------------------------------------------------------------


class AccountLinksSchema(_Links):
    """Links of an account."""

    transactions = fields.String(required=True, metadata={"description": "Its statement."})


class AccountSchema(Schema):
    """An hour account and its balance in minutes."""

    id = fields.String(required=True, metadata={"example": _UUID_EXAMPLE})
    kind = fields.String(required=True, metadata={"enum": ["member", "organization", "clearing"]})
    member_id = fields.String(required=True, allow_none=True)
    organization_id = fields.String(required=True, allow_none=True)
    platform_id = fields.String(required=True, allow_none=True)
    balance_minutes = fields.Integer(required=True, metadata={"example": 120})
    credit_limit_minutes = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "Lowest balance allowed; null: no limit.", "example": -600},
    )
    available_minutes = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "How much more may be spent; null: no limit.", "example": 720},
    )
    created_at = fields.DateTime(required=True)
    links = fields.Nested(AccountLinksSchema, required=True)


class EntrySchema(Schema):
    """One side of a transaction."""

    account_id = fields.String(required=True)
    amount_minutes = fields.Integer(
        required=True, metadata={"description": "Negative: debited; positive: credited."}
    )
    balance_after_minutes = fields.Integer(required=True)


class TransactionLinksSchema(_Links):
    """Links of a transaction."""

    reversal = fields.String(
        required=True,
        metadata={"description": "POST here to reverse it (or GET the reversal's self link)."},
    )


class TransactionSchema(Schema):
    """A posted transaction."""

    id = fields.String(required=True, metadata={"example": _UUID_EXAMPLE})
    kind = fields.String(
        required=True, metadata={"enum": ["desk", "help", "transfer", "import", "reversal"]}
    )
    description = fields.String(required=True)
    minutes = fields.Integer(required=True, metadata={"example": 180})
    payer_account_id = fields.String(required=True, allow_none=True)
    payee_account_id = fields.String(required=True, allow_none=True)
    entries = fields.List(fields.Nested(EntrySchema), required=True)
    occurred_at = fields.DateTime(required=True)
    created_at = fields.DateTime(required=True)
    reversal_of = fields.String(
        required=True, allow_none=True, metadata={"description": "The transaction this undoes."}
    )
    reversed_by = fields.String(
        required=True, allow_none=True, metadata={"description": "The reversal that undid this."}
    )
    source = fields.String(required=True, metadata={"example": "api"})
    links = fields.Nested(TransactionLinksSchema, required=True)


class StatementLineSchema(Schema):
    """One entry of an account's statement."""

    entry_id = fields.Integer(required=True)
    transaction_id = fields.String(required=True)
    kind = fields.String(required=True)
    description = fields.String(required=True)
    amount_minutes = fields.Integer(
        required=True, metadata={"description": "Negative: paid; positive: received."}
    )
    balance_after_minutes = fields.Integer(required=True)
    counterparty_account_ids = fields.List(fields.String(), required=True)
    occurred_at = fields.DateTime(required=True)
    created_at = fields.DateTime(required=True)
    reversal_of = fields.String(required=True, allow_none=True)


class StatementSchema(Schema):
    """A page of a statement, newest first."""

    account_id = fields.String(required=True)
    balance_minutes = fields.Integer(required=True)
    items = fields.List(fields.Nested(StatementLineSchema), required=True)
    next_cursor = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Pass as ?cursor= for the next page; null on the last page."},
    )


class MemberSchema(Schema):
    """The member the token acts for, with their account."""

    id = fields.String(required=True)
    display_name = fields.String(required=True)
    locale = fields.String(required=True, metadata={"enum": ["it", "en"]})
    municipio = fields.Integer(required=True, allow_none=True)
    account = fields.Nested(AccountSchema, required=True)


class OrganizationSchema(Schema):
    """An organization and its account."""

    id = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True, metadata={"enum": ["cooperative", "company"]})
    municipio = fields.Integer(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    account = fields.Nested(AccountSchema, required=True)


class OrganizationListSchema(Schema):
    """Every organization."""

    items = fields.List(fields.Nested(OrganizationSchema), required=True)

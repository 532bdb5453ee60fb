"""Query arguments and bodies of the admin API."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from schemas.vocabulary import INBOX_STATES, OUTBOX_KINDS, OUTBOX_STATES, WEBHOOK_EVENT_TYPES

# The outbox list's tabs: what an operator looks for, not the raw state column.
OUTBOX_TABS = ("failing", "dead", "pending", "succeeded", "skipped", "all")
BULK_ACTIONS = ("retry", "skip")


class _Query(Schema):
    class Meta:
        unknown = EXCLUDE

    cursor = fields.String(load_default=None)
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))


class OutboxFilter(Schema):
    """Which outbox rows: a tab (or a raw state), a platform, a kind, a member."""

    class Meta:
        unknown = EXCLUDE

    tab = fields.String(load_default=None, validate=validate.OneOf(OUTBOX_TABS))
    state = fields.String(load_default=None, validate=validate.OneOf(OUTBOX_STATES))
    kind = fields.String(load_default=None, validate=validate.OneOf(OUTBOX_KINDS))
    platform = fields.String(load_default=None)
    member = fields.String(load_default=None, validate=validate.Length(1, 36))


class OutboxQuery(OutboxFilter):
    """Filters of the outbox list."""

    cursor = fields.String(load_default=None)
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))


class BulkBody(OutboxFilter):
    """Retry or skip every row a filter selects. ``expected`` is the count the operator was
    shown: if the set changed since, nothing is done."""

    action = fields.String(required=True, validate=validate.OneOf(BULK_ACTIONS))
    reason = fields.String(required=True, validate=validate.Length(3, 500))
    expected = fields.Integer(required=True, validate=validate.Range(1, 1000))


class CallbackQuery(_Query):
    """Filters of the callback log (every state unless one is asked for)."""

    state = fields.String(load_default=None, validate=validate.OneOf(INBOX_STATES))
    platform = fields.String(load_default=None)
    event_type = fields.String(load_default=None, validate=validate.Length(1, 64))


class AuditQuery(_Query):
    """Filters of the audit log."""

    action = fields.String(load_default=None)
    actor = fields.String(load_default=None)
    target = fields.String(load_default=None, validate=validate.Length(1, 120))


class RunQuery(_Query):
    """Filters of the reconciliation runs."""

    platform = fields.String(load_default=None)


class ActivityQuery(Schema):
    """The chart's window."""

    class Meta:
        unknown = EXCLUDE

    hours = fields.Integer(load_default=24, validate=validate.Range(1, 168))
    platform = fields.String(load_default=None)


class MemberQuery(Schema):
    """Member lookup."""

    class Meta:
        unknown = EXCLUDE

    q = fields.String(required=True, validate=validate.Length(2, 254))


class ReasonBody(Schema):
    """Why an operator acts: kept in the audit log."""

    reason = fields.String(required=True, validate=validate.Length(3, 500))


class SkipBody(ReasonBody):
    """Why an item is skipped."""


class WebhookBody(Schema):
    """A new webhook subscription: where, which events, and a note for operators."""

    url = fields.String(required=True, validate=validate.Length(1, 500))
    events = fields.List(
        fields.String(validate=validate.OneOf(WEBHOOK_EVENT_TYPES)),
        required=True,
        validate=validate.Length(min=1, error="Name at least one event type."),
    )
    description = fields.String(load_default="", validate=validate.Length(0, 200))


class WebhookUpdateBody(Schema):
    """A change to a subscription: its events, its description, or both."""

    events = fields.List(
        fields.String(validate=validate.OneOf(WEBHOOK_EVENT_TYPES)),
        validate=validate.Length(min=1, error="Name at least one event type."),
    )
    description = fields.String(validate=validate.Length(0, 200))

    @validates_schema
    def _something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "events" not in data and "description" not in data:
            raise ValidationError("Send events, description or both.", "_schema")


class RotateBody(Schema):
    """A secret rotation: how long the current secret keeps signing beside the new one."""

    grace_seconds = fields.Integer(load_default=None, validate=validate.Range(0, 30 * 86400))

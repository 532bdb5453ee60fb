"""Query arguments and bodies of the admin API."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from gateway.sync.models import OUTBOX_KINDS, OUTBOX_STATES

INBOX_STATES = ("received", "processed", "parked", "ignored", "failed")


class _Query(Schema):
    class Meta:
        unknown = EXCLUDE

    cursor = fields.String(load_default=None)
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))


class OutboxQuery(_Query):
    """Filters of the outbox list."""

    state = fields.String(load_default=None, validate=validate.OneOf(OUTBOX_STATES))
    kind = fields.String(load_default=None, validate=validate.OneOf(OUTBOX_KINDS))
    platform = fields.String(load_default=None)


class CallbackQuery(_Query):
    """Filters of the callback list (parked by default)."""

    state = fields.String(load_default="parked", validate=validate.OneOf(INBOX_STATES))
    platform = fields.String(load_default=None)


class AuditQuery(_Query):
    """Filters of the audit log."""

    action = fields.String(load_default=None)
    actor = fields.String(load_default=None)


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

    q = fields.String(required=True, validate=validate.Length(1, 254))


class SkipBody(Schema):
    """Why an item is skipped."""

    reason = fields.String(required=True, validate=validate.Length(3, 500))

"""Query arguments and bodies of the admin API.

The outbox's kinds and states and the inbox's states are the stored rows' words: the gateway's
models own them and hand them in (``OutboxQuery(states=..., kinds=...)``), so that these schemas
import nothing from ``gateway`` and never drift from the database's check constraints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate


def _accept_only(schema: Schema, name: str, choices: Sequence[str]) -> None:
    field = schema.fields[name]  # the schema's own copy of the declared field
    field.validators = [*field.validators, validate.OneOf(tuple(choices))]


class _Query(Schema):
    class Meta:
        unknown = EXCLUDE

    cursor = fields.String(load_default=None)
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))


class OutboxQuery(_Query):
    """Filters of the outbox list: ``states`` and ``kinds`` are the outbox's own."""

    state = fields.String(load_default=None)
    kind = fields.String(load_default=None)
    platform = fields.String(load_default=None)

    def __init__(self, *, states: Sequence[str], kinds: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _accept_only(self, "state", states)
        _accept_only(self, "kind", kinds)


class CallbackQuery(_Query):
    """Filters of the callback list (parked by default): ``states`` are the inbox's own."""

    state = fields.String(load_default="parked")
    platform = fields.String(load_default=None)

    def __init__(self, *, states: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _accept_only(self, "state", states)


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

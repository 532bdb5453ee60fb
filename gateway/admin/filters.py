"""The admin lists' filter schemas, given the stored rows' own vocabulary."""

from __future__ import annotations

from gateway.callbacks.models import INBOX_STATES
from gateway.sync.models import OUTBOX_KINDS, OUTBOX_STATES
from schemas.admin import CallbackQuery, OutboxQuery


def outbox_query() -> OutboxQuery:
    """The outbox list's filters: only the outbox's kinds and states."""
    return OutboxQuery(states=OUTBOX_STATES, kinds=OUTBOX_KINDS)


def callback_query() -> CallbackQuery:
    """The callback list's filters: only the inbox's states."""
    return CallbackQuery(states=INBOX_STATES)

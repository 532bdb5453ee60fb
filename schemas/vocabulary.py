"""The words stored rows use for their kind and state, shared by the models and the schemas.

The database's check constraints are built from these (``gateway.sync.models``,
``gateway.callbacks.models``), and the admin filters accept exactly these: one list each,
so a filter never offers a state the table cannot hold. ``schemas`` imports nothing from
``gateway``; the gateway imports its vocabulary from here.
"""

from __future__ import annotations

OUTBOX_KINDS = (
    "register_member",
    "update_member",
    "erase_member",
    "push_transfer",
    "reverse_transfer",
    "event",  # a signed event for a webhook subscription (gateway.webhooks)
)
# pending: waiting for its first or next attempt; running: a job holds it;
# succeeded / dead / skipped: final (dead = gave up or permanent error; skipped = by an operator).
OUTBOX_STATES = ("pending", "running", "succeeded", "dead", "skipped")
INBOX_STATES = ("received", "processed", "parked", "ignored", "failed")

# The events the gateway pushes to webhook subscriptions, in the order the guide lists them.
WEBHOOK_EVENT_TYPES = (
    "member.created",
    "member.verified",
    "member.deleted",
    "platform.linked",
    "platform.unlinked",
    "transaction.posted",
    "transaction.imported",
    "transaction.reversed",
    "balance.changed",
)

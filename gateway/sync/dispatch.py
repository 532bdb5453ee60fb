"""Turning committed outbox rows into RQ jobs."""

from __future__ import annotations

from collections.abc import Iterable


def enqueue_items(outbox_ids: Iterable[str]) -> int:
    """Enqueue a delivery job for each row (inside an app context); duplicates are harmless."""
    from gateway.sync.jobs import schedule

    count = 0
    for outbox_id in outbox_ids:
        schedule(outbox_id)
        count += 1
    return count

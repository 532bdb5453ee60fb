"""Writing outbox rows, and handing them to the workers once their transaction has committed.

``record_effect`` adds a row to the caller's session; nothing is dispatched until that session
commits, so a rolled-back change sends nothing. Dispatch makes sure one drain job per platform
the commit touched is coming (see ``gateway.sync.dispatch``), however many rows it wrote. If
Redis is down at that moment the rows stay ``pending`` and the sweeper dispatches them later:
losing Redis loses no work.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import has_app_context
from sqlalchemy import event, insert
from sqlalchemy.orm import Session

from gateway.db import add_as_loaded, db, table_of, utcnow
from gateway.members.models import new_id
from gateway.sync.models import OUTBOX_KINDS, OutboxItem

log = logging.getLogger(__name__)

_PENDING_KEY = "gateway.outbox.new"
_INSERT = insert(table_of(OutboxItem))


def record_effect(
    *,
    platform_id: str,
    kind: str,
    member_id: str | None = None,
    transaction_id: str | None = None,
    payload: dict[str, Any] | None = None,
    depends_on: OutboxItem | None = None,
    skipped: tuple[str, str] | None = None,
) -> OutboxItem:
    """Add an outbound effect to the current transaction; it is dispatched after commit.

    The row is inserted at once with a Core statement (every posting writes one; the unit of
    work cost more than the SQL) and put in the session as a loaded row. ``skipped`` (code,
    reason) writes it as skipped from the start: there is nothing to send, but the row says
    why, and comes back if what it depends on is ever delivered after all.
    """
    if kind not in OUTBOX_KINDS:
        raise ValueError(f"unknown outbox kind {kind!r}")
    session = db.session
    if session.new:
        session.flush()  # the rows this one refers to (its member, its platform) go first
    now = utcnow()
    values = {
        "id": new_id(),
        "platform_id": platform_id,
        "kind": kind,
        "member_id": member_id,
        "transaction_id": transaction_id,
        "payload": payload or {},
        "depends_on_id": depends_on.id if depends_on else None,
        "state": "skipped" if skipped else "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }
    ending = {
        "last_error_code": skipped[0] if skipped else None,
        "skipped_reason": skipped[1] if skipped else None,
        "completed_at": now if skipped else None,
    }
    session.execute(_INSERT, values | ending if skipped else values)
    # Unset columns are SQL NULL (a JSON column given None would store JSON null).
    item = OutboxItem(**values, **ending, last_error=None, result=None)
    add_as_loaded(session, item)
    if not skipped:
        session.info.setdefault(_PENDING_KEY, set()).add(platform_id)
    return item


@event.listens_for(Session, "after_commit")
def _dispatch_after_commit(session: Session) -> None:
    platforms = session.info.pop(_PENDING_KEY, None)
    if not platforms or not has_app_context():
        return
    from gateway.sync.dispatch import ensure_drains

    try:
        ensure_drains(platforms)
    except Exception:  # noqa: BLE001 - the rows are committed; the sweeper will dispatch them
        log.warning(
            "could not dispatch outbox rows of %d platform(s); the sweeper will retry",
            len(platforms),
        )


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)

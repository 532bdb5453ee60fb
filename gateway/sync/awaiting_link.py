"""Callback events that waited for a member's link: woken the moment the link turns active.

An event naming a wallet no active link owns is parked "unmapped" (the member's registration
may still be on its way, or its answer was lost while the platform went on). Whoever makes a
link active calls ``link_activated`` in the same transaction: the events naming its wallet go
back to ``received`` and are handed to the workers once that transaction commits, so they apply
without an operator. A hand-over lost with Redis is redone by the inbox sweeper, as for any
``received`` row.
"""

from __future__ import annotations

import logging

from flask import has_app_context
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from gateway.db import db

log = logging.getLogger(__name__)

_WOKEN_KEY = "gateway.sync.woken_callbacks"


def link_activated(platform_id: str, wallet_id: str | None) -> list[str]:
    """Wake the platform's unmapped events that name ``wallet_id``; returns their ids."""
    from gateway.callbacks.models import InboxEvent
    from gateway.callbacks.processing import PARK_REASONS

    if not wallet_id:
        return []
    # The raw body names the wallet as a JSON string; a false match only costs a re-park.
    ids = db.session.scalars(
        select(InboxEvent.id).where(
            InboxEvent.platform_id == platform_id,
            InboxEvent.state == "parked",
            InboxEvent.parked_reason == PARK_REASONS["unmapped"],
            InboxEvent.body.contains(f'"{wallet_id}"', autoescape=True),
        )
    ).all()
    if ids:
        db.session.execute(
            update(InboxEvent)
            .where(InboxEvent.id.in_(ids))
            .values(state="received", parked_reason=None),
            execution_options={"synchronize_session": False},
        )
        db.session.info.setdefault(_WOKEN_KEY, []).extend(ids)
    return list(ids)


@event.listens_for(Session, "after_commit")
def _hand_over_after_commit(session: Session) -> None:
    woken = session.info.pop(_WOKEN_KEY, None)
    if not woken or not has_app_context():
        return
    from gateway.callbacks.drain import hand_over

    try:
        hand_over(woken)
    except Exception:  # noqa: BLE001 - committed as received: the inbox sweeper hands them over
        log.warning("%d woken callback event(s) not queued; the sweeper will", len(woken))


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_WOKEN_KEY, None)

"""What the callback inbox forgets when a member is erased.

Partners' events carry personal data: a ``member.updated`` body holds the member's name and
address, a transfer its free-text description. The inbox keeps bodies so that operators can
read and reprocess them, but not past the member's erasure. Rows still waiting to be applied
(``received``) keep their body until they are applied, because applying needs it, and lose it
then; a row parked for this member's wallet could never be applied once the member is gone,
so it ends ``ignored``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlalchemy import exists, or_, select

from gateway.callbacks.models import InboxEvent
from gateway.db import db
from gateway.federation.models import PlatformLink
from gateway.members.models import Member

ERASED_REASON = "the member was erased: the body was scrubbed"


def _scrub(event: InboxEvent) -> None:
    event.body = json.dumps({"id": event.webhook_id, "type": event.event_type, "erased": True})
    # The signature was over the original body; it proves nothing about this one.
    event.headers = {}
    if event.state == "parked":
        event.state = "ignored"
        event.next_attempt_at = None
    event.parked_reason = ERASED_REASON


def scrub_member_events(member_id: str) -> int:
    """Replace the bodies of settled events that name the member's remote ids (not committed).

    Returns how many rows were scrubbed. An id is matched as a whole JSON string, quotes
    included, so ``w-1`` does not match ``w-10``.
    """
    scrubbed = 0
    links = db.session.scalars(select(PlatformLink).where(PlatformLink.member_id == member_id))
    for link in links:
        remote_ids = [i for i in (link.remote_member_id, link.remote_wallet_id) if i]
        if not remote_ids:
            continue
        events = db.session.scalars(
            select(InboxEvent).where(
                InboxEvent.platform_id == link.platform_id,
                InboxEvent.state != "received",
                or_(
                    *(
                        InboxEvent.body.contains(json.dumps(remote_id), autoescape=True)
                        for remote_id in remote_ids
                    )
                ),
            )
        )
        for event in events:
            _scrub(event)
            scrubbed += 1
    db.session.flush()
    return scrubbed


def scrub_if_about_erased(
    event: InboxEvent, remote_ids: Iterable[str | None], *, through_live_link: bool = False
) -> bool:
    """Scrub an event just applied (not committed) when it names an erased member's remote ids.

    Returns whether it did. This is where rows that were still waiting at the erasure lose
    their body, once applied.
    """
    ids = [i for i in remote_ids if i]
    if not ids:
        return False
    conditions = [
        PlatformLink.platform_id == event.platform_id,
        or_(PlatformLink.remote_member_id.in_(ids), PlatformLink.remote_wallet_id.in_(ids)),
        PlatformLink.member_id == Member.id,
        Member.status == "erased",
    ]
    if through_live_link:
        # An applied transfer found its wallets through live links, whose unique indexes
        # answer this for every transfer; the rarer member events (a member.erased confirms a
        # link's end) and parked rows look at every link.
        conditions.append(PlatformLink.state != "erased")
    erased = bool(db.session.scalar(select(exists().where(*conditions))))
    if erased:
        _scrub(event)
    return erased

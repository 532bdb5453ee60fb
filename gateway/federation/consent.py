"""A member's consent to join a timebank: recorded with what is shared and the text they saw.

Granting writes the outbox row that registers the member there (the sync engine delivers it);
withdrawing writes the row that erases them. Both happen in the caller's transaction.
"""

from __future__ import annotations

from sqlalchemy import select

from gateway.db import db, utcnow
from gateway.federation.models import Consent, Platform, PlatformLink
from gateway.members.models import Member
from gateway.sync.models import OutboxItem
from gateway.sync.outbox import record_effect

# What a timebank receives about the member, in the order the consent page lists it. The
# register handler (gateway.sync.handlers.member_data) sends exactly these.
SHARED_FIELDS = ("external_id", "email", "display_name", "locale", "skills")
# The fields a member may leave out are the optional ones the handler reads from the payload.
OPTIONAL_FIELDS = ("locale", "skills")
# Bump when the consent text (translations: consent.text) changes in substance.
CONSENT_TEXT_VERSION = "2026-11-v1"


def active_consent(member: Member, platform: Platform) -> Consent | None:
    """The member's consent to ``platform`` that has not been withdrawn."""
    return db.session.scalar(
        select(Consent).where(
            Consent.member_id == member.id,
            Consent.platform_id == platform.id,
            Consent.withdrawn_at.is_(None),
        )
    )


def link_for(member: Member, platform: Platform) -> PlatformLink | None:
    """The member's link to ``platform``, if any."""
    return db.session.scalar(
        select(PlatformLink).where(
            PlatformLink.member_id == member.id, PlatformLink.platform_id == platform.id
        )
    )


def _open_item(member: Member, platform: Platform, kind: str) -> OutboxItem | None:
    return db.session.scalar(
        select(OutboxItem)
        .where(
            OutboxItem.member_id == member.id,
            OutboxItem.platform_id == platform.id,
            OutboxItem.kind == kind,
            OutboxItem.state.in_(("pending", "running")),
        )
        .limit(1)
    )


def record_consent(member: Member, platform: Platform) -> Consent:
    """Record consent (not committed); an existing active consent is kept as it is."""
    consent = active_consent(member, platform)
    if consent is None:
        consent = Consent(
            member_id=member.id,
            platform_id=platform.id,
            fields=list(SHARED_FIELDS),
            text_version=CONSENT_TEXT_VERSION,
            granted_at=utcnow(),
        )
        db.session.add(consent)
    return consent


def grant(member: Member, platform: Platform) -> Consent:
    """Consent to ``platform`` and ask for the member's registration there (not committed)."""
    if not platform.enabled:
        raise ValueError("this timebank is not accepting new members now")
    consent = record_consent(member, platform)
    link = link_for(member, platform)
    if link is None:
        link = PlatformLink(member_id=member.id, platform_id=platform.id, state="pending")
        db.session.add(link)
    elif link.state in ("active", "pending") and link.remote_member_id:
        return consent
    elif link.state == "failed":
        # The platform said the email has an account there: only linking it can help.
        return consent
    else:
        link.state = "pending"
        link.remote_member_id = None
        link.remote_wallet_id = None
        link.linked_via = "registration"
    db.session.flush()
    if _open_item(member, platform, "register_member") is None:
        record_effect(
            platform_id=platform.id,
            kind="register_member",
            member_id=member.id,
            payload={"fields": list(OPTIONAL_FIELDS)},
            depends_on=_open_item(member, platform, "erase_member"),
        )
    return consent


def withdraw(member: Member, platform: Platform) -> None:
    """Withdraw consent and ask for the member's erasure there (not committed)."""
    consent = active_consent(member, platform)
    if consent is not None:
        consent.withdrawn_at = utcnow()
    link = link_for(member, platform)
    if link is None or link.state in ("erasing", "erased"):
        return
    if link.linked_via == "oauth":
        # The account was the member's before they linked it: unlink it, never delete it.
        link.state = "erased"
        return
    link.state = "erasing"
    record_effect(
        platform_id=platform.id,
        kind="erase_member",
        member_id=member.id,
        depends_on=_open_item(member, platform, "register_member"),
    )

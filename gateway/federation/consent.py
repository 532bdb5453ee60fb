"""A member's consent to join a timebank: recorded with what is shared and the text they saw.

Granting writes the outbox row that registers the member there (the sync engine delivers it);
withdrawing writes the row that erases them, or, for an account the member linked, the row that
revokes our link to it (the account stays theirs). Both happen in the caller's transaction.

Registering again after a disconnection gives the member back the account the platform kept,
if it kept one (``Connector.erase_keeps_account``): the link keeps its remote ids for that.
"""

from __future__ import annotations

from sqlalchemy import select

from gateway.db import db, utcnow
from gateway.federation.models import Consent, Platform, PlatformLink
from gateway.members.models import Member
from gateway.sync.models import OutboxItem
from gateway.sync.outbox import record_effect
from gateway.webhooks import events as webhook_events

# What a timebank receives about the member, in the order the consent page lists it. The
# register handler (gateway.sync.handlers.member_data) sends exactly these.
SHARED_FIELDS = ("external_id", "email", "display_name", "locale", "skills")
# The fields a member may leave out are the optional ones the handler reads from the payload.
OPTIONAL_FIELDS = ("locale", "skills")
# Bump when the consent text (translations: consent.text) changes in substance.
CONSENT_TEXT_VERSION = "2026-11-v1"


class Refused(Exception):
    """The member may not join or link this timebank now; ``key`` names the message for them."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def check_may_join(member: Member, link: PlatformLink | None) -> None:
    """Refuse a member whose address is unconfirmed, or whose disconnection is still going on.

    A partner account is opened with the member's address, and linking ties one to them: both
    wait until the address is known to be theirs.
    """
    if member.email_verified_at is None:
        raise Refused("timebanks.error.unverified")
    if link is not None and link.state == "erasing" and link.linked_via == "oauth":
        # Linking now could be undone by the revocation still on its way.
        raise Refused("timebanks.error.busy")


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


def unlinked_own_account(link: PlatformLink | None) -> bool:
    """Whether the member's account there is one they linked and then disconnected.

    Connecting again means linking it again (through the platform's own authorization): a
    registration would open a second account.
    """
    return link is not None and link.linked_via == "oauth" and link.state in ("erasing", "erased")


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
    link = link_for(member, platform)
    check_may_join(member, link)
    consent = record_consent(member, platform)
    if link is None:
        link = PlatformLink(member_id=member.id, platform_id=platform.id, state="pending")
        db.session.add(link)
    elif link.state in ("active", "pending") and link.remote_member_id:
        return consent
    elif link.state == "failed":
        # The platform said the email has an account there: only linking it can help.
        return consent
    else:
        # An account the platform kept keeps its ids: the registration reuses it.
        link.state = "pending"
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
    link.state = "erasing"
    webhook_events.platform_unlinked(member.id, platform)
    record_effect(
        platform_id=platform.id,
        kind="erase_member",
        member_id=member.id,
        # The account was the member's before they linked it: unlink it, never erase it.
        payload={"unlink": True} if link.linked_via == "oauth" else {},
        depends_on=_open_item(member, platform, "register_member"),
    )

"""Creating members, changing what identifies them and erasing them: the one place the
members' pages and the operators' CLI go through."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from gateway.auth.grants import end_member_grants
from gateway.callbacks.erasure import scrub_member_events
from gateway.db import db, utcnow
from gateway.federation import consent
from gateway.federation.models import Consent, Platform, PlatformLink
from gateway.members.models import Member
from gateway.members.passwords import hash_password, password_problem
from gateway.sync.outbox import record_effect
from gateway.webhooks import events as webhook_events
from schemas.members import SKILLS

# What the profile page may change, and which of it a timebank receives (SHARED_FIELDS).
PROFILE_FIELDS = ("display_name", "locale", "skills", "municipio")
# The domain no address can be delivered to (RFC 2606): an erased member's address is made
# from their id under it, unique as the column requires and nobody's mailbox.
ERASED_DOMAIN = "erased.invalid"


class MemberError(ValueError):
    """A member cannot be created or changed; ``key`` names the catalog message and field."""

    def __init__(self, field: str, key: str) -> None:
        super().__init__(key)
        self.field = field
        self.key = key


def normalize_email(email: str) -> str:
    """Addresses compare case-insensitively in practice; they are stored lower-cased."""
    return email.strip().lower()


def find_by_email(email: str) -> Member | None:
    """The member with ``email``, if any."""
    return db.session.scalar(select(Member).where(Member.email == normalize_email(email)))


def create_member(
    email: str,
    display_name: str,
    password: str,
    locale: str = "it",
    skills: list[str] | None = None,
    municipio: int | None = None,
    is_admin: bool = False,
) -> Member:
    """Add an active member (not committed). Raises ``MemberError`` for a taken email or a
    weak password."""
    email = normalize_email(email)
    problem = password_problem(password, email)
    if problem:
        raise MemberError("password", problem)
    if find_by_email(email) is not None:
        raise MemberError("email", "members.error.email_taken")
    member = Member(
        email=email,
        display_name=display_name.strip(),
        password_hash=hash_password(password),
        locale=locale,
        skills=list(skills or []),
        municipio=municipio,
        is_admin=is_admin,
    )
    db.session.add(member)
    db.session.flush()
    webhook_events.member_created(member)
    return member


def set_password(member: Member, password: str) -> None:
    """Change the password, ending every login and token of the member (not committed).

    Whoever held the account before (a session, an app's tokens) loses it: the reset is
    how the owner of an address takes back an account someone else opened with it.
    """
    problem = password_problem(password, member.email)
    if problem:
        raise MemberError("password", problem)
    member.password_hash = hash_password(password)
    # Consents given before the address was ever confirmed may not have been the owner's.
    end_member_grants(member.id, forget_consents=not member.is_verified)


def disable_member(member: Member) -> None:
    """Stop the member from logging in and acting; every login and token ends (not committed)."""
    member.status = "disabled"
    end_member_grants(member.id)


def enable_member(member: Member) -> None:
    """Let a disabled member log in again (not committed); what was ended stays ended."""
    member.status = "active"


def mark_verified(member: Member) -> None:
    """The member proved they read mail at their address (not committed)."""
    if member.email_verified_at is None:
        member.email_verified_at = utcnow()
        webhook_events.member_verified(member)


def update_profile(member: Member, changes: dict[str, Any]) -> list[str]:
    """Change the member's profile (not committed); returns the fields that changed.

    Each timebank the member is linked to, and consented to share a changed field with,
    receives the change through the outbox (``update_member``); only what the consent names
    goes, as at registration.
    """
    changed = []
    for name in PROFILE_FIELDS:
        if name not in changes:
            continue
        value = _normal(name, changes[name])
        old = getattr(member, name)
        if (set(value) != set(old or ())) if name == "skills" else value != old:
            setattr(member, name, value)
            changed.append(name)
    if changed:
        _send_profile(member, changed)
    return changed


def _normal(name: str, value: Any) -> Any:
    if name == "display_name":
        return str(value).strip()
    if name == "skills":
        return [skill for skill in SKILLS if skill in set(value or ())]  # the form's order
    return value


def _send_profile(member: Member, changed: Iterable[str]) -> None:
    rows = db.session.execute(
        select(PlatformLink, Consent)
        .join(
            Consent,
            (Consent.member_id == PlatformLink.member_id)
            & (Consent.platform_id == PlatformLink.platform_id),
        )
        .where(
            PlatformLink.member_id == member.id,
            # A registration still on its way reads the member when it is sent: it carries
            # the change already. A link being erased gets nothing more.
            PlatformLink.state == "active",
            PlatformLink.remote_member_id.is_not(None),
            Consent.withdrawn_at.is_(None),
        )
    ).all()
    for link, given in rows:
        shared = set(given.fields or ())
        if not shared & set(changed):
            continue
        record_effect(
            platform_id=link.platform_id,
            kind="update_member",
            member_id=member.id,
            payload={"fields": [f for f in consent.OPTIONAL_FIELDS if f in shared]},
        )


def erased_address(member_id: str) -> str:
    """The address an erased member's row keeps: unique, undeliverable, about nobody."""
    return f"erased+{member_id}@{ERASED_DOMAIN}"


def erased_name(member_id: str) -> str:
    """The name an erased member's row keeps (pages show "former member" instead)."""
    return f"erased-{member_id[:8]}"


def erase_member(member: Member) -> list[Platform]:
    """Erase the member (not committed); returns the timebanks the erasure goes to.

    The row stays, under a pseudonym: the ledger's accounts refer to it and the ledger is
    append-only, so postings keep their member id but no longer name anyone. Every timebank
    the member joined gets an ``erase_member`` row (one they linked themselves: the link is
    revoked, the account stays theirs), consents are withdrawn (their records are kept, as
    proof of what was agreed), every login, token and consent to an app ends, and the
    partners' settled events that name the member lose their bodies.
    """
    if member.status == "erased":
        raise MemberError("member", "data.erase.already")
    platforms = db.session.scalars(
        select(Platform)
        .where(
            Platform.id.in_(
                select(PlatformLink.platform_id).where(PlatformLink.member_id == member.id)
            )
            | Platform.id.in_(
                select(Consent.platform_id).where(
                    Consent.member_id == member.id, Consent.withdrawn_at.is_(None)
                )
            )
        )
        .order_by(Platform.name)
    ).all()
    reached = []
    for platform in platforms:
        link = consent.link_for(member, platform)
        if link is not None and link.state not in ("erasing", "erased"):
            reached.append(platform)
        consent.withdraw(member, platform)
    end_member_grants(member.id, forget_consents=True)
    scrub_member_events(member.id)
    member.status = "erased"
    member.email = erased_address(member.id)
    member.display_name = erased_name(member.id)
    member.password_hash = None
    member.skills = []
    member.municipio = None
    member.locale = "it"
    member.is_admin = False
    member.email_verified_at = None
    db.session.flush()
    webhook_events.member_deleted(member.id)
    return reached

"""Linking a member's existing account on a timebank, through that platform's own
authorization-code flow (PKCE S256), with the gateway as the OAuth client."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy import select

from connectors.interface import AccountLinking, OAuthSettings
from gateway.db import db
from gateway.federation.consent import Refused, check_may_join, link_for, record_consent
from gateway.federation.models import Platform, PlatformLink
from gateway.members.models import Member
from gateway.sync.awaiting_link import link_activated
from gateway.sync.remote import connector_for
from gateway.webhooks import events as webhook_events


class LinkingError(Refused):
    """Linking cannot go on; ``key`` names the catalog message for the member."""


@dataclass(frozen=True)
class LinkStart:
    """Where to send the member, and what to keep in their session until they come back."""

    url: str
    state: str
    verifier: str


def link_settings(platform: Platform) -> OAuthSettings | None:
    """Where the platform's members authorize a link, or None if its connector cannot link."""
    connector = connector_for(platform)
    return connector.oauth_settings() if isinstance(connector, AccountLinking) else None


def start(member: Member, platform: Platform, redirect_uri: str) -> LinkStart:
    """The platform's authorization URL for this attempt."""
    check_may_join(member, link_for(member, platform))
    connector = connector_for(platform)
    settings = connector.oauth_settings()
    if settings is None or not isinstance(connector, AccountLinking):
        raise LinkingError("timebanks.error.no_linking")
    state = secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = {
        "response_type": "code",
        "client_id": settings.client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(settings.scopes),
        "state": state,
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    return LinkStart(f"{settings.authorize_url}?{urlencode(query)}", state, verifier)


def finish(
    member: Member,
    platform: Platform,
    code: str,
    state: str,
    expected_state: str,
    verifier: str,
    redirect_uri: str,
) -> PlatformLink:
    """Exchange the code, read the account it authorized, and store the link (commits)."""
    if not expected_state or not hmac.compare_digest(state.encode(), expected_state.encode()):
        raise LinkingError("timebanks.error.state")
    check_may_join(member, link_for(member, platform))
    connector = connector_for(platform)
    if not isinstance(connector, AccountLinking):
        raise LinkingError("timebanks.error.no_linking")
    remote = connector.link_member(code, redirect_uri, verifier)
    taken = db.session.scalar(
        select(PlatformLink).where(
            PlatformLink.platform_id == platform.id,
            PlatformLink.remote_member_id == remote.id,
            PlatformLink.member_id != member.id,
            PlatformLink.state != "erased",  # an unlinked account is free to link again
        )
    )
    if taken is not None:
        raise LinkingError("timebanks.error.taken")
    link = link_for(member, platform)
    if link is None:
        link = PlatformLink(member_id=member.id, platform_id=platform.id)
        db.session.add(link)
    link.remote_member_id = remote.id
    link.remote_wallet_id = remote.wallet_id
    link.state = "active"
    link.linked_via = "oauth"
    record_consent(member, platform)
    link_activated(platform.id, remote.wallet_id)  # events that named its wallet apply now
    webhook_events.platform_linked(member.id, platform, link.linked_via)
    db.session.commit()
    return link

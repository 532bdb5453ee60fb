"""Everything the gateway holds about a member, gathered for them (GDPR articles 15 and 20).

One function gathers it and both the download (JSON) and the readable page show that same
gathering, so the two can never disagree. Secrets are left out (the password's hash, token
hashes): they identify nothing and would only help someone who got hold of the file. Other
people appear only as the member's own history shows them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from gateway.admin.models import AdminAction
from gateway.auth.grants import granted_apps
from gateway.auth.models import OAuthClient, OAuthToken
from gateway.db import db, utcnow
from gateway.federation.models import Consent, Platform, PlatformLink
from gateway.ledger import services as ledger
from gateway.members import history
from gateway.members.models import Member, MemberSession


def _platforms() -> dict[str, Platform]:
    return {p.id: p for p in db.session.scalars(select(Platform))}


def _platform_name(platform: Platform | None) -> str:
    return (platform.display_name or platform.name) if platform is not None else "?"


def _profile(member: Member) -> dict[str, Any]:
    return {
        "id": member.id,
        "email": member.email,
        "email_confirmed_at": member.email_verified_at,
        "display_name": member.display_name,
        "locale": member.locale,
        "municipio": member.municipio,
        "skills": list(member.skills or []),
        "is_operator": member.is_admin,
        "status": member.status,
        "created_at": member.created_at,
        "updated_at": member.updated_at,
    }


def _posting(posting: history.Posting) -> dict[str, Any]:
    return {
        "transaction_id": posting.transaction_id,
        "occurred_at": posting.occurred_at,
        "kind": posting.kind,
        "description": posting.description,
        "minutes": posting.minutes,
        "balance_after_minutes": posting.balance_after_minutes,
        "reversal_of": posting.reversal_of,
        "counterparts": [{"kind": c.kind, "name": c.name or None} for c in posting.counterparts],
        "came_from": posting.came_from,
        "sent_to": [{"platform": m.platform, "state": m.state} for m in posting.mirrors],
    }


def _hours(member: Member) -> dict[str, Any]:
    account = ledger.find_member_account(member.id)
    if account is None:
        return {
            "account_id": None,
            "balance_minutes": 0,
            "credit_limit_minutes": None,
            "postings": [],
        }
    return {
        "account_id": account.id,
        "balance_minutes": account.balance_minutes,
        "credit_limit_minutes": account.credit_limit_minutes,
        "postings": [_posting(p) for p in history.all_postings(account)],
    }


def _timebanks(member: Member, platforms: dict[str, Platform]) -> list[dict[str, Any]]:
    links = db.session.scalars(
        select(PlatformLink)
        .where(PlatformLink.member_id == member.id)
        .order_by(PlatformLink.created_at)
    )
    return [
        {
            "platform": _platform_name(platforms.get(link.platform_id)),
            "state": link.state,
            "how": "linked_own_account" if link.linked_via == "oauth" else "joined_through_us",
            "remote_member_id": link.remote_member_id,
            "remote_wallet_id": link.remote_wallet_id,
            "since": link.created_at,
            "updated_at": link.updated_at,
        }
        for link in links
    ]


def _consents(member: Member, platforms: dict[str, Platform]) -> list[dict[str, Any]]:
    consents = db.session.scalars(
        select(Consent).where(Consent.member_id == member.id).order_by(Consent.granted_at)
    )
    return [
        {
            "platform": _platform_name(platforms.get(consent.platform_id)),
            "fields": list(consent.fields or []),
            "text_version": consent.text_version,
            "granted_at": consent.granted_at,
            "withdrawn_at": consent.withdrawn_at,
        }
        for consent in consents
    ]


def _apps(member: Member) -> list[dict[str, Any]]:
    return [
        {
            "name": app.name,
            "client_id": app.client_id,
            "scopes": app.scopes,
            "granted_at": app.granted_at,
            "last_used_at": app.last_used_at,
        }
        for app in granted_apps(member.id)
    ]


def _signed_in_sites(member: Member) -> list[dict[str, Any]]:
    """Every site or app holding a token for the member that has not been revoked."""
    rows = db.session.execute(
        select(OAuthClient.name, func.count(), func.max(OAuthToken.issued_at))
        .join(OAuthClient, OAuthClient.client_id == OAuthToken.client_id)
        .where(OAuthToken.member_id == member.id, OAuthToken.revoked_at.is_(None))
        .group_by(OAuthClient.name)
        .order_by(OAuthClient.name)
    )
    return [
        {"name": name, "tokens": count, "last_issued_at": datetime.fromtimestamp(at, UTC)}
        for name, count, at in rows
    ]


def _logins(member: Member, current_login_id: str | None) -> list[dict[str, Any]]:
    sessions = db.session.scalars(
        select(MemberSession)
        .where(MemberSession.member_id == member.id)
        .order_by(MemberSession.authenticated_at.desc())
    )
    return [
        {
            "started_at": row.authenticated_at,
            "last_seen_at": row.last_seen_at,
            "this_browser": row.id == current_login_id,
        }
        for row in sessions
    ]


def _operator_actions(member: Member) -> list[dict[str, Any]]:
    actions = db.session.scalars(
        select(AdminAction)
        .where(AdminAction.target_type == "member", AdminAction.target_id == member.id)
        .order_by(AdminAction.created_at)
    )
    return [{"action": a.action, "reason": a.reason, "at": a.created_at} for a in actions]


def gather(member: Member, current_login_id: str | None = None) -> dict[str, Any]:
    """What the gateway holds about ``member``, by kind; times are aware datetimes."""
    platforms = _platforms()
    return {
        "generated_at": utcnow(),
        "profile": _profile(member),
        "hours": _hours(member),
        "timebanks": _timebanks(member, platforms),
        "consents": _consents(member, platforms),
        "apps": _apps(member),
        "signed_in_sites": _signed_in_sites(member),
        "logins": _logins(member, current_login_id),
        "operator_actions": _operator_actions(member),
    }


def as_json(value: Any) -> Any:
    """``value`` with every datetime as ISO 8601 text (UTC), ready for ``json.dumps``."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, dict):
        return {key: as_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_json(item) for item in value]
    return value

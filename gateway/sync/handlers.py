"""What each kind of outbox row does on the platform, and what it changes locally.

Handlers run inside the delivery job's transaction: local changes (a link's remote ids) are
committed together with the row's new state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from connectors.interface import MemberData, TransferData
from gateway.db import db
from gateway.federation.models import Platform, PlatformLink
from gateway.members.models import Member
from gateway.sync.models import OutboxItem
from gateway.sync.remote import ConflictError, PermanentError, RetryableError, connector_for


class NotReady(RetryableError):
    """A precondition on our side is not met yet (a link still registering)."""


def _link(member_id: str | None, platform: Platform) -> PlatformLink | None:
    if member_id is None:
        return None
    return db.session.scalar(
        select(PlatformLink).where(
            PlatformLink.member_id == member_id, PlatformLink.platform_id == platform.id
        )
    )


def member_data(member: Member, fields: list[str] | None) -> MemberData:
    """The member as the platform sees it: only the fields consented to beyond the required."""
    shared = set(fields or ("locale", "skills"))
    return MemberData(
        external_id=member.id,
        email=member.email,
        display_name=member.display_name,
        locale=member.locale if "locale" in shared else "it",
        skills=list(member.skills or []) if "skills" in shared else [],
    )


def _register(item: OutboxItem, platform: Platform) -> dict[str, Any]:
    member = db.session.get(Member, item.member_id)
    link = _link(item.member_id, platform)
    if member is None or link is None:
        raise PermanentError("member or link no longer exists", code="gone")
    if link.state == "active" and link.remote_member_id:
        return {
            "remote_member_id": link.remote_member_id,
            "remote_wallet_id": link.remote_wallet_id,
        }
    remote = connector_for(platform).register_member(
        member_data(member, item.payload.get("fields")), item.idempotency_key
    )
    link.remote_member_id = remote.id
    link.remote_wallet_id = remote.wallet_id
    link.state = "active"
    return {"remote_member_id": remote.id, "remote_wallet_id": remote.wallet_id}


def _update(item: OutboxItem, platform: Platform) -> dict[str, Any]:
    member = db.session.get(Member, item.member_id)
    link = _link(item.member_id, platform)
    if member is None or link is None or not link.remote_member_id:
        raise PermanentError("the member has no account on this platform", code="not_linked")
    if link.state != "active":
        raise NotReady("the link is not active yet", retry_after=5)
    remote = connector_for(platform).update_member(
        link.remote_member_id, member_data(member, item.payload.get("fields")), item.idempotency_key
    )
    return {"remote_member_id": remote.id}


def _erase(item: OutboxItem, platform: Platform) -> dict[str, Any]:
    link = _link(item.member_id, platform)
    if link is None or not link.remote_member_id:
        # Never registered remotely: nothing to erase there.
        if link is not None:
            link.state = "erased"
        return {"erased": False}
    connector_for(platform).erase_member(link.remote_member_id, item.idempotency_key)
    link.state = "erased"
    return {"erased": True, "remote_member_id": link.remote_member_id}


def _wallet(member_id: str | None, platform: Platform, role: str) -> str:
    link = _link(member_id, platform)
    if link is not None and link.state in ("pending",):
        raise NotReady(
            f"the {role}'s registration on {platform.name} is not done yet", retry_after=5
        )
    if link is not None and link.state == "active" and link.remote_wallet_id:
        return link.remote_wallet_id
    clearing = (platform.options or {}).get("clearing_wallet_id")
    if clearing:
        return str(clearing)
    raise PermanentError(
        f"the {role} has no wallet on {platform.name} and the platform has no clearing wallet",
        code="no_wallet",
    )


def _push(item: OutboxItem, platform: Platform) -> dict[str, Any]:
    payload = item.payload
    occurred = payload.get("occurred_at")
    transfer = TransferData(
        payer_wallet_id=_wallet(payload.get("payer_member_id"), platform, "payer"),
        payee_wallet_id=_wallet(payload.get("payee_member_id"), platform, "payee"),
        minutes=int(payload["minutes"]),
        description=payload.get("description", ""),
        external_reference=f"gw-txn-{item.transaction_id}",
        occurred_at=datetime.fromisoformat(occurred) if occurred else None,
    )
    remote = connector_for(platform).create_transfer(transfer, item.idempotency_key)
    return {"remote_transfer_id": remote.id}


def _reverse(item: OutboxItem, platform: Platform) -> dict[str, Any]:
    pushed = db.session.get(OutboxItem, item.depends_on_id) if item.depends_on_id else None
    remote_id = (pushed.result or {}).get("remote_transfer_id") if pushed else None
    remote_id = remote_id or item.payload.get("remote_transfer_id")
    if not remote_id:
        raise PermanentError("the original transfer was never created remotely", code="not_pushed")
    remote = connector_for(platform).reverse_transfer(remote_id, item.idempotency_key)
    return {"remote_transfer_id": remote.id, "reversal_of": remote_id}


HANDLERS = {
    "register_member": _register,
    "update_member": _update,
    "erase_member": _erase,
    "push_transfer": _push,
    "reverse_transfer": _reverse,
}


def run(item: OutboxItem, platform: Platform) -> dict[str, Any]:
    """Perform ``item`` on ``platform``; raises the connector's typed errors."""
    return HANDLERS[item.kind](item, platform)


def resolve_conflict(item: OutboxItem, platform: Platform, error: ConflictError) -> dict[str, Any]:
    """The platform already has what we tried to create: record what it is."""
    if item.kind == "register_member":
        # The email has an account there already: linking it needs the member's own
        # authorization on that platform, so the link waits for the member to connect it.
        link = _link(item.member_id, platform)
        if link is not None:
            link.state = "failed"
        return {"conflict": "member_exists", "needs": "oauth_link"}
    transfer = item.kind in ("push_transfer", "reverse_transfer")
    return {
        "conflict": "exists",
        ("remote_transfer_id" if transfer else "remote_id"): error.existing_id,
    }

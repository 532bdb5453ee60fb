"""What each kind of outbox row does on the platform, and what it changes locally.

A delivery is split where the network is. ``prepare`` reads what the row needs from the
database and returns a ``Call``: its ``send`` is the remote request alone (it touches no
database, so a drain can run several at once in threads), and its ``apply`` writes what the
answer changes locally (a link's remote ids) into the caller's session, to be committed with
the row's new state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from connectors.interface import AccountLinking, MemberData, RemoteMember, TransferData
from gateway.db import db
from gateway.federation.models import Platform, PlatformLink
from gateway.members.models import Member
from gateway.sync.awaiting_link import link_activated
from gateway.sync.models import OutboxItem
from gateway.sync.references import transfer_reference
from gateway.sync.remote import ConflictError, PermanentError, RetryableError, connector_for
from gateway.webhooks import events as webhook_events


class NotReady(RetryableError):
    """A precondition on our side is not met yet (a link still registering)."""


@dataclass(frozen=True)
class Call:
    """A prepared delivery: ``send`` (None: nothing to send) then ``apply`` to its answer."""

    send: Callable[[], Any] | None
    apply: Callable[[Any], dict[str, Any]]


def _done(result: dict[str, Any]) -> Call:
    return Call(send=None, apply=lambda _answer: result)


class Links:
    """The platform's links of the members some rows name, read in one query."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._links: dict[str, PlatformLink | None] = {}

    def preload(self, items: Iterable[OutboxItem]) -> Links:
        """Read the links of every member ``items`` name (payer and payee too)."""
        wanted: set[str | None] = set()
        for item in items:
            payload = item.payload or {}
            wanted.update(
                (item.member_id, payload.get("payer_member_id"), payload.get("payee_member_id"))
            )
        self._load(wanted)
        return self

    def get(self, member_id: str | None) -> PlatformLink | None:
        """The member's link to the platform, if any."""
        if member_id is None:
            return None
        self._load({member_id})
        return self._links[member_id]

    def _load(self, member_ids: set[str | None]) -> None:
        wanted = {m for m in member_ids if m is not None} - self._links.keys()
        if not wanted:
            return
        found = db.session.scalars(
            select(PlatformLink)
            .where(PlatformLink.platform_id == self.platform.id, PlatformLink.member_id.in_(wanted))
            # Another worker may have activated a link since this session last read it.
            .execution_options(populate_existing=True)
        ).all()
        self._links.update(dict.fromkeys(wanted))
        self._links.update({link.member_id: link for link in found})


def member_data(member: Member, fields: list[str] | None) -> MemberData:
    """The member as the platform sees it: only the fields consented to beyond the required."""
    # None (a row written before fields were named) shares both; an empty list shares neither.
    shared = set(("locale", "skills") if fields is None else fields)
    return MemberData(
        external_id=member.id,
        email=member.email,
        display_name=member.display_name,
        locale=member.locale if "locale" in shared else "it",
        skills=list(member.skills or []) if "skills" in shared else [],
    )


def _register(item: OutboxItem, platform: Platform, links: Links) -> Call:
    member = db.session.get(Member, item.member_id)
    link = links.get(item.member_id)
    if member is None or link is None:
        raise PermanentError("member or link no longer exists", code="gone")
    if link.state == "active" and link.remote_member_id:
        return _done(
            {"remote_member_id": link.remote_member_id, "remote_wallet_id": link.remote_wallet_id}
        )
    connector = connector_for(platform)
    data = member_data(member, item.payload.get("fields"))
    key = item.idempotency_key
    # The account the member had here before disconnecting, which the platform kept.
    kept = link.remote_member_id

    def send() -> RemoteMember:
        if kept:
            try:
                remote = connector.update_member(kept, data, key)
            except PermanentError as error:
                if error.status != 404:
                    raise
            else:
                if remote.status != "erased":
                    return remote
            # Gone after all: a new account, under a key of its own (the PATCH used this one).
            return connector.register_member(data, f"{key}-new")
        return connector.register_member(data, key)

    def apply(remote: Any) -> dict[str, Any]:
        link.remote_member_id = remote.id
        link.remote_wallet_id = remote.wallet_id
        link.state = "active"
        link_activated(platform.id, remote.wallet_id)
        webhook_events.platform_linked(link.member_id, platform, link.linked_via)
        return {"remote_member_id": remote.id, "remote_wallet_id": remote.wallet_id}

    return Call(send=send, apply=apply)


def _update(item: OutboxItem, platform: Platform, links: Links) -> Call:
    member = db.session.get(Member, item.member_id)
    link = links.get(item.member_id)
    if member is None or link is None or not link.remote_member_id:
        raise PermanentError("the member has no account on this platform", code="not_linked")
    if link.state != "active":
        raise NotReady("the link is not active yet", retry_after=5)
    connector = connector_for(platform)
    remote_id = link.remote_member_id
    data = member_data(member, item.payload.get("fields"))
    key = item.idempotency_key
    return Call(
        send=lambda: connector.update_member(remote_id, data, key),
        apply=lambda remote: {"remote_member_id": remote.id},
    )


def _erase(item: OutboxItem, platform: Platform, links: Links) -> Call:
    link = links.get(item.member_id)
    if link is None or not link.remote_member_id:
        # Never registered remotely: nothing to erase there.
        def forget(_answer: Any) -> dict[str, Any]:
            if link is not None and link.state == "erasing":
                link.state = "erased"
            return {"erased": False}

        return Call(send=None, apply=forget)
    connector = connector_for(platform)
    remote_id = link.remote_member_id
    key = item.idempotency_key
    # An account the member linked stays theirs: the link is revoked, the account never erased.
    unlink = bool(item.payload.get("unlink"))
    if unlink and not isinstance(connector, AccountLinking):
        raise PermanentError("this platform's connector cannot revoke a link", code="no_linking")

    def send() -> None:
        if isinstance(connector, AccountLinking) and unlink:
            connector.revoke_link(remote_id, key)
        else:
            connector.erase_member(remote_id, key)

    def apply(_answer: Any) -> dict[str, Any]:
        if link.state == "erasing":  # not if the member connected again meanwhile
            link.state = "erased"
        if (unlink or not connector.erase_keeps_account) and link.remote_member_id == remote_id:
            # Gone, or no longer ours to see: free the ids for whoever links that account next.
            link.remote_member_id = link.remote_wallet_id = None
        return {"erased": not unlink, "unlinked": unlink, "remote_member_id": remote_id}

    return Call(send=send, apply=apply)


def _wallet(member_id: str | None, platform: Platform, links: Links, role: str) -> str:
    link = links.get(member_id)
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


def _push(item: OutboxItem, platform: Platform, links: Links) -> Call:
    payload = item.payload
    occurred = payload.get("occurred_at")
    transfer = TransferData(
        payer_wallet_id=_wallet(payload.get("payer_member_id"), platform, links, "payer"),
        payee_wallet_id=_wallet(payload.get("payee_member_id"), platform, links, "payee"),
        minutes=int(payload["minutes"]),
        description=payload.get("description", ""),
        external_reference=transfer_reference(str(item.transaction_id)),
        occurred_at=datetime.fromisoformat(occurred) if occurred else None,
    )
    connector = connector_for(platform)
    key = item.idempotency_key
    return Call(
        send=lambda: connector.create_transfer(transfer, key),
        apply=lambda remote: {"remote_transfer_id": remote.id},
    )


def _reverse(item: OutboxItem, platform: Platform, links: Links) -> Call:
    pushed = db.session.get(OutboxItem, item.depends_on_id) if item.depends_on_id else None
    remote_id = (pushed.result or {}).get("remote_transfer_id") if pushed else None
    remote_id = remote_id or item.payload.get("remote_transfer_id")
    if not remote_id:
        raise PermanentError("the original transfer was never created remotely", code="not_pushed")
    connector = connector_for(platform)
    key = item.idempotency_key
    return Call(
        send=lambda: connector.reverse_transfer(remote_id, key),
        apply=lambda remote: {"remote_transfer_id": remote.id, "reversal_of": remote_id},
    )


def _event(item: OutboxItem, platform: Platform, _links: Links) -> Call:
    from gateway.webhooks.delivery import prepare_event  # the webhooks package builds on this

    return prepare_event(item, platform)


HANDLERS: dict[str, Callable[[OutboxItem, Platform, Links], Call]] = {
    "register_member": _register,
    "update_member": _update,
    "erase_member": _erase,
    "push_transfer": _push,
    "reverse_transfer": _reverse,
    "event": _event,
}


def prepare(item: OutboxItem, platform: Platform, links: Links) -> Call:
    """Read what ``item`` needs and return its call; raises NotReady or a PermanentError."""
    return HANDLERS[item.kind](item, platform, links)


def resolve_conflict(item: OutboxItem, platform: Platform, error: ConflictError) -> dict[str, Any]:
    """The platform already has what we tried to create: record what it is."""
    if item.kind == "register_member":
        # The email has an account there already: linking it needs the member's own
        # authorization on that platform, so the link waits for the member to connect it.
        link = Links(platform).get(item.member_id)
        if link is not None:
            link.state = "failed"
        return {"conflict": "member_exists", "needs": "oauth_link"}
    transfer = item.kind in ("push_transfer", "reverse_transfer")
    return {
        "conflict": "exists",
        ("remote_transfer_id" if transfer else "remote_id"): error.existing_id,
    }

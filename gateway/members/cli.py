"""`gateway members ...`: create, list, disable, enable and erase members (operators' tooling)."""

from __future__ import annotations

import sys

import click
from flask import Flask
from sqlalchemy import select

from gateway.admin import actions
from gateway.admin.models import AdminAction
from gateway.commands import fail, with_app
from gateway.db import db
from gateway.i18n import gettext
from gateway.members import accounts
from gateway.members.models import Member
from gateway.problems import Problem


@click.group("members")
def members_group() -> None:
    """Members of the gateway."""


@members_group.command("create")
@click.option("--email", required=True)
@click.option("--name", "display_name", required=True)
@click.option("--password-stdin", is_flag=True, required=True, help="Read the password from stdin.")
@click.option("--admin", is_flag=True, help="An operator: may use the admin page and API.")
@click.option("--locale", type=click.Choice(["it", "en"]), default="it", show_default=True)
@click.option("--verified", is_flag=True, help="Mark the address as confirmed.")
@with_app(needs_redis=False)
def members_create(
    app: Flask,
    email: str,
    display_name: str,
    password_stdin: bool,
    admin: bool,
    locale: str,
    verified: bool,
) -> None:
    """Create an active member; the password comes from stdin, never the command line."""
    password = sys.stdin.readline().rstrip("\n")
    try:
        member = accounts.create_member(
            email, display_name, password, locale=locale, is_admin=admin
        )
    except accounts.MemberError as error:
        db.session.rollback()
        fail(gettext(error.key, locale="en"))
    if verified:
        accounts.mark_verified(member)
    db.session.commit()
    role = "operator" if admin else "member"
    click.echo(f"Created {role} {member.id}.")


@members_group.command("list")
@click.option("--admins", is_flag=True, help="Only operators.")
@with_app(needs_redis=False)
def members_list(app: Flask, admins: bool) -> None:
    """Members, newest first."""
    query = select(Member).order_by(Member.created_at.desc())
    if admins:
        query = query.where(Member.is_admin.is_(True))
    for member in db.session.scalars(query):
        role = "admin" if member.is_admin else "member"
        click.echo(f"{member.id}\t{member.status}\t{role}\t{member.email}\t{member.display_name}")


def _find(who: str) -> Member:
    member = accounts.find_by_email(who) if "@" in who else db.session.get(Member, who)
    if member is None:
        fail(f"no member {who!r} (give an email address or a member id).")
    assert member is not None  # noqa: S101 - fail() exited
    return member


def _audit(action: str, member: Member, reason: str) -> None:
    db.session.add(
        AdminAction(
            actor="cli", action=action, target_type="member", target_id=member.id, reason=reason
        )
    )


@members_group.command("disable")
@click.argument("who")
@click.option("--reason", required=True, help="Why; kept in the audit log.")
@with_app(needs_redis=False)
def members_disable(app: Flask, who: str, reason: str) -> None:
    """Stop a member (email or id) from logging in; every login and token ends at once."""
    member = _find(who)
    try:
        actions.disable_member("cli", member.id, reason)
    except Problem as problem:
        fail(f"{problem.detail}")
    click.echo(f"Disabled {member.id}; their logins and tokens have ended.")


@members_group.command("enable")
@click.argument("who")
@click.option("--reason", required=True, help="Why; kept in the audit log.")
@with_app(needs_redis=False)
def members_enable(app: Flask, who: str, reason: str) -> None:
    """Let a disabled member (email or id) log in again."""
    member = _find(who)
    try:
        actions.enable_member("cli", member.id, reason)
    except Problem as problem:
        fail(f"{problem.detail}")
    click.echo(f"Enabled {member.id}.")


@members_group.command("erase")
@click.argument("who")
@click.option(
    "--reason", required=True, help="Why (e.g. the member's request); kept in the audit log."
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_app(needs_redis=False)
def members_erase(app: Flask, who: str, reason: str, yes: bool) -> None:
    """Erase a member (email or id), as their own "delete my account" does: it cannot be undone.

    Their profile is pseudonymised, every timebank they joined erases them, every login and
    token ends; their ledger entries stay, no longer naming them. Without Redis the erasures
    wait in the outbox for the scheduler's sweep.
    """
    member = _find(who)
    if member.status == "erased":
        fail("the member was erased already.")
    if not yes:
        click.confirm(f"Erase {member.email} ({member.id})? This cannot be undone", abort=True)
    platforms = accounts.erase_member(member)
    _audit("member.erase", member, reason)
    db.session.commit()
    reached = ", ".join(p.name for p in platforms) or "none"
    click.echo(f"Erased {member.id}; timebanks told to erase them: {reached}.")

"""`gateway platforms ...`: register external platforms and rotate their webhook secrets.

`platforms add` stores nothing the connector cannot use, and, where the connector can, registers
our callback URL at the platform and stores the secret the platform answers with; any failure
leaves nothing stored.
"""

from __future__ import annotations

import json
import sys

import click
from flask import Flask
from sqlalchemy import select

from gateway.commands import fail, with_app
from gateway.db import db
from gateway.federation.models import Platform, is_timebank
from gateway.federation.platforms import (
    PlatformError,
    active_secrets,
    add_platform,
    add_webhook_secret,
    can_register_webhook,
    check_configuration,
    get_platform,
    new_webhook_secret,
    register_webhook,
    revoke_webhook_secret,
)


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep or not key:
            fail(f"--{what} takes key=value, not {value!r}.")
        pairs[key] = item
    return pairs


def _platform(name: str) -> Platform:
    platform = get_platform(name)
    if platform is None:
        fail(f"No platform named {name!r}.")
    return platform


@click.group("platforms")
def platforms_group() -> None:
    """External timebanks the gateway federates with."""


@platforms_group.command("add")
@click.argument("name")
@click.option("--connector", required=True, help="Connector key, e.g. timerepublik or komunitin.")
@click.option("--base-url", required=True, help="The platform's API base URL.")
@click.option("--webhook-secret", "secrets", multiple=True, help="whsec_... (repeatable).")
@click.option("--credential", "credentials", multiple=True, help="key=value (repeatable).")
@click.option("--credentials-stdin", is_flag=True, help="Read credentials as JSON from stdin.")
@click.option("--option", "options", multiple=True, help="Connector option key=value.")
@click.option("--clearing-wallet", default=None, help="The platform wallet for non-members.")
@click.option(
    "--register/--no-register",
    default=True,
    help="Register our callback URL at the platform and store its secret (where the connector "
    "can; the default).",
)
@with_app(needs_redis=False)
def platforms_add(
    app: Flask,
    name: str,
    connector: str,
    base_url: str,
    secrets: tuple[str, ...],
    credentials: tuple[str, ...],
    credentials_stdin: bool,
    options: tuple[str, ...],
    clearing_wallet: str | None,
    register: bool,
) -> None:
    """Register platform NAME (credentials from stdin keep secrets out of shell history).

    The connector checks the configuration first; where it can, our callback URL is registered
    at the platform and the signing secret it answers with is stored.
    """
    creds: dict = _pairs(credentials, "credential")
    if credentials_stdin:
        try:
            creds.update(json.load(sys.stdin))
        except ValueError:
            fail("--credentials-stdin expects a JSON object.")
    opts: dict = _pairs(options, "option")
    if clearing_wallet:
        opts["clearing_wallet_id"] = clearing_wallet
    try:
        platform = add_platform(
            name,
            connector,
            base_url,
            credentials=creds,
            webhook_secrets=list(secrets),
            options=opts,
        )
        check_configuration(platform)
        registered = (
            register_webhook(platform) if register and can_register_webhook(platform) else None
        )
    except PlatformError as exc:
        db.session.rollback()
        fail(str(exc))
    db.session.commit()
    click.echo(f"Platform {platform.name} added ({platform.connector}, {platform.base_url}).")
    if registered is not None:
        click.echo(
            f"Callbacks registered at {platform.name}: {registered.url} "
            f"(secret …{registered.secret.hint})."
        )
    if not active_secrets(platform):
        click.echo(
            f"Warning: {platform.name} has no webhook secret: its callbacks are refused until "
            f"one is added (`gateway platforms secrets add {platform.name} whsec_...`).",
            err=True,
        )


@platforms_group.command("list")
@with_app(needs_redis=False)
def platforms_list(app: Flask) -> None:
    """List timebanks (webhook subscriptions: `gateway webhooks list`)."""
    platforms = db.session.scalars(
        select(Platform).where(is_timebank()).order_by(Platform.name)
    ).all()
    if not platforms:
        click.echo("No platforms yet: add one with `gateway platforms add`.")
    for p in platforms:
        state = "enabled" if p.enabled else "disabled"
        click.echo(f"{p.name:<16} {p.connector:<14} {state:<9} {p.base_url}")


@platforms_group.command("show")
@click.argument("name")
@with_app(needs_redis=False)
def platforms_show(app: Flask, name: str) -> None:
    """Show a platform; secrets appear only as their last characters."""
    p = _platform(name)
    click.echo(f"name:        {p.name}\nconnector:   {p.connector}\nbase URL:    {p.base_url}")
    click.echo(f"enabled:     {p.enabled}\nconcurrency: {p.max_concurrency}")
    click.echo(f"credentials: {', '.join(sorted(p.credentials)) or 'none'} (values hidden)")
    click.echo(f"options:     {json.dumps(p.options or {}, sort_keys=True)}")
    hints = ", ".join(f"…{s.hint}" for s in active_secrets(p)) or "none"
    click.echo(f"secrets:     {hints}")


@platforms_group.command("enable")
@click.argument("name")
@with_app(needs_redis=False)
def platforms_enable(app: Flask, name: str) -> None:
    """Enable a platform: its outbox is delivered and its callbacks accepted."""
    _platform(name).enabled = True
    db.session.commit()
    click.echo(f"Platform {name} enabled.")


@platforms_group.command("disable")
@click.argument("name")
@with_app(needs_redis=False)
def platforms_disable(app: Flask, name: str) -> None:
    """Disable a platform: its outbox waits and its callbacks are refused."""
    _platform(name).enabled = False
    db.session.commit()
    click.echo(f"Platform {name} disabled.")


@platforms_group.group("secrets")
def secrets_group() -> None:
    """Webhook secrets of a platform (several may be active while rotating)."""


@secrets_group.command("add")
@click.argument("name")
@click.argument("secret")
@with_app(needs_redis=False)
def secrets_add(app: Flask, name: str, secret: str) -> None:
    """Add SECRET (whsec_...) to platform NAME."""
    try:
        row = add_webhook_secret(_platform(name), secret)
    except PlatformError as exc:
        fail(str(exc))
    db.session.commit()
    click.echo(f"Secret …{row.hint} added to {name}.")


@secrets_group.command("rotate")
@click.argument("name")
@click.option("--revoke-old", is_flag=True, help="Revoke the older secrets once registered.")
@with_app(needs_redis=False)
def secrets_rotate(app: Flask, name: str, revoke_old: bool) -> None:
    """Register our callback URL at NAME again with a new secret, and store it.

    The older secrets keep verifying (events already in flight) until revoked, here with
    --revoke-old or later with `secrets revoke`.
    """
    platform = _platform(name)
    older = active_secrets(platform)
    try:
        registered = register_webhook(platform, secret=new_webhook_secret())
    except PlatformError as exc:
        db.session.rollback()
        fail(str(exc))
    if not registered.new:
        db.session.rollback()
        fail(f"{name} kept its secret …{registered.secret.hint}: nothing was rotated.")
    if revoke_old:
        for row in older:
            revoke_webhook_secret(platform, row.id)
    db.session.commit()
    click.echo(f"Secret …{registered.secret.hint} registered at {name} and added.")
    for row in older:
        if revoke_old:
            click.echo(f"Secret …{row.hint} revoked.")
        else:
            click.echo(
                f"Secret …{row.hint} still active: revoke it when no event signed with it "
                f"can arrive (`gateway platforms secrets revoke {name} {row.hint}`)."
            )


@secrets_group.command("revoke")
@click.argument("name")
@click.argument("hint")
@with_app(needs_redis=False)
def secrets_revoke(app: Flask, name: str, hint: str) -> None:
    """Revoke the secret of NAME whose last characters are HINT."""
    try:
        revoke_webhook_secret(_platform(name), hint)
    except PlatformError as exc:
        fail(str(exc))
    db.session.commit()
    click.echo(f"Secret …{hint} of {name} revoked.")

"""`gateway webhooks ...`: subscribe the website (or any receiver) to events.

A subscription's secret is printed once, when it is made or rotated: the receiver stores it to
verify signatures (Standard Webhooks). Subscriptions are not timebanks: `gateway platforms`
does not list them.
"""

from __future__ import annotations

import json

import click
from flask import Flask

from gateway.commands import fail, with_app
from gateway.db import db
from gateway.webhooks.subscriptions import (
    Subscription,
    WebhookError,
    add_subscription,
    describe,
    disable_subscription,
    enable_subscription,
    get_subscription,
    list_subscriptions,
    rotate_secret,
    update_subscription,
)
from schemas.vocabulary import WEBHOOK_EVENT_TYPES

ACTOR = "cli"


def _find(subscription_id: str) -> Subscription:
    try:
        return get_subscription(subscription_id)
    except WebhookError as exc:
        fail(str(exc))


def _show(subscription: Subscription, secret: str | None = None) -> None:
    document = describe(subscription, secret)
    state = "enabled" if document["enabled"] else "disabled"
    click.echo(f"{document['id']}  {state:<8}  {document['url']}")
    click.echo(f"  events: {', '.join(document['events'])}")
    if document["description"]:
        click.echo(f"  description: {document['description']}")
    hints = ", ".join(
        f"…{s['hint']}" + (f" (until {s['signs_until']})" if s["signs_until"] else "")
        for s in document["secrets"]
    )
    click.echo(f"  signing secrets: {hints or 'none'}")


@click.group("webhooks")
def webhooks_group() -> None:
    """Events pushed to the website, signed as Standard Webhooks."""


@webhooks_group.command("add")
@click.option("--url", required=True, help="Where events are POSTed (https; http for localhost).")
@click.option(
    "--event",
    "events",
    multiple=True,
    required=True,
    help=f"An event type (repeatable): {', '.join(WEBHOOK_EVENT_TYPES)}.",
)
@click.option("--description", default="", help="What the receiver is, for operators.")
@click.option("--json", "as_json", is_flag=True, help="Print the subscription as JSON.")
@with_app(needs_redis=False)
def webhooks_add(
    app: Flask, url: str, events: tuple[str, ...], description: str, as_json: bool
) -> None:
    """Subscribe URL to events; prints the signing secret (whsec_...) once."""
    try:
        subscription, secret = add_subscription(ACTOR, url, events, description)
    except WebhookError as exc:
        db.session.rollback()
        fail(str(exc))
    db.session.commit()
    if as_json:
        click.echo(json.dumps(describe(subscription, secret), indent=2))
        return
    _show(subscription)
    click.echo(f"Signing secret (shown once, keep it with the receiver): {secret}")


@webhooks_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the subscriptions as JSON.")
@with_app(needs_redis=False)
def webhooks_list(app: Flask, as_json: bool) -> None:
    """List subscriptions (secrets appear only as their last characters)."""
    subscriptions = list_subscriptions()
    if as_json:
        click.echo(json.dumps({"items": [describe(s) for s in subscriptions]}, indent=2))
        return
    if not subscriptions:
        click.echo("No webhook subscriptions yet: add one with `gateway webhooks add`.")
    for subscription in subscriptions:
        _show(subscription)


@webhooks_group.command("disable")
@click.argument("subscription_id")
@with_app(needs_redis=False)
def webhooks_disable(app: Flask, subscription_id: str) -> None:
    """Stop sending events to a subscription; events not sent yet are skipped."""
    subscription = _find(subscription_id)
    try:
        skipped = disable_subscription(ACTOR, subscription)
    except WebhookError as exc:
        fail(str(exc))
    db.session.commit()
    click.echo(f"Subscription {subscription_id} disabled; {skipped} unsent event(s) skipped.")


@webhooks_group.command("enable")
@click.argument("subscription_id")
@with_app(needs_redis=False)
def webhooks_enable(app: Flask, subscription_id: str) -> None:
    """Send events to a disabled subscription again.

    Events skipped when it was disabled stay skipped (retry one from the admin outbox page if
    the receiver needs it); events of the disabled period were never written.
    """
    subscription = _find(subscription_id)
    try:
        enable_subscription(ACTOR, subscription)
    except WebhookError as exc:
        fail(str(exc))
    db.session.commit()
    click.echo(
        f"Subscription {subscription_id} enabled; events skipped while it was disabled "
        "stay skipped."
    )


@webhooks_group.command("update")
@click.argument("subscription_id")
@click.option(
    "--event",
    "events",
    multiple=True,
    help="The event types it wants from now on (repeatable; replaces the list): "
    f"{', '.join(WEBHOOK_EVENT_TYPES)}.",
)
@click.option("--description", default=None, help="A new description for operators.")
@click.option("--json", "as_json", is_flag=True, help="Print the subscription as JSON.")
@with_app(needs_redis=False)
def webhooks_update(
    app: Flask,
    subscription_id: str,
    events: tuple[str, ...],
    description: str | None,
    as_json: bool,
) -> None:
    """Change a subscription's events or description; events already queued are unchanged."""
    if not events and description is None:
        fail("Give --event (one or more) or --description.")
    subscription = _find(subscription_id)
    try:
        changed = update_subscription(ACTOR, subscription, events or None, description)
    except WebhookError as exc:
        db.session.rollback()
        fail(str(exc))
    db.session.commit()
    if as_json:
        click.echo(json.dumps(describe(subscription) | {"changed": changed}, indent=2))
        return
    _show(subscription)
    if not changed:
        click.echo("Nothing changed: it already had these events and description.")


@webhooks_group.group("secrets")
def secrets_group() -> None:
    """The secrets that sign a subscription's events."""


@secrets_group.command("rotate")
@click.argument("subscription_id")
@click.option(
    "--grace-seconds",
    type=click.IntRange(min=0),
    default=None,
    help="How long the current secret keeps signing beside the new one "
    "(default: WEBHOOK_ROTATION_GRACE_SECONDS, a day).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@with_app(needs_redis=False)
def secrets_rotate(
    app: Flask, subscription_id: str, grace_seconds: int | None, as_json: bool
) -> None:
    """Make a new signing secret; prints it once. Both sign until the grace period ends."""
    subscription = _find(subscription_id)
    secret, until = rotate_secret(ACTOR, subscription, grace_seconds)
    db.session.commit()
    if as_json:
        click.echo(json.dumps(describe(subscription, secret), indent=2))
        return
    click.echo(f"New signing secret (shown once): {secret}")
    click.echo(f"The previous secret keeps signing beside it until {until.isoformat()}.")

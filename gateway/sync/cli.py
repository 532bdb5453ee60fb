"""`gateway reconcile` and `gateway outbox ...`: the sync engine from the command line."""

from __future__ import annotations

from typing import Any

import click
from flask import Flask
from sqlalchemy import func, select

from gateway.commands import fail, with_app
from gateway.db import db
from gateway.federation.models import Platform, is_timebank
from gateway.sync.models import OutboxItem


@click.command("reconcile")
@click.option("--platform", "platform_name", default=None, help="Only this platform (by name).")
@with_app
def reconcile_command(app: Flask, platform_name: str | None) -> None:
    """Reconcile platforms now: import, re-send, compare balances; print each report."""
    from gateway.sync.reconcile import reconcile_platform

    # Webhook subscriptions have nothing to reconcile: only timebanks, even by name.
    query = select(Platform).where(Platform.enabled.is_(True), is_timebank())
    if platform_name:
        query = select(Platform).where(Platform.name == platform_name, is_timebank())
    platforms = db.session.scalars(query).all()
    if not platforms:
        fail(f"No platform named {platform_name!r}." if platform_name else "No enabled platform.")
    for platform in platforms:
        with click.progressbar(length=0, label=f"{platform.name}", show_pos=True) as bar:

            def progress(stage: str, count: int, bar: Any = bar, name: str = platform.name) -> None:
                bar.label = f"{name}: {stage}"
                bar.pos = count
                bar.render_progress()

            run = reconcile_platform(platform.id, trigger="manual", progress=progress)
        click.echo(
            f"{platform.name}: {run.state}; {run.transfers_seen} transfers read, "
            f"{run.imported} imported, {run.resent} re-sent, {run.wallets_checked} wallets "
            f"compared, {run.differences} difference(s)"
            + (f", {run.wallets_unreadable} wallet(s) unreadable" if run.wallets_unreadable else "")
            + (
                f", {run.transfers_unapplied} transfer(s) not applied yet"
                if run.transfers_unapplied
                else ""
            )
            + (f"; {run.error}" if run.error else "")
        )


@click.group("outbox")
def outbox_group() -> None:
    """Outbound effects waiting for, or done by, the platforms."""


@outbox_group.command("status")
@with_app(needs_redis=False)
def outbox_status(app: Flask) -> None:
    """Count outbox rows by platform and state."""
    rows = db.session.execute(
        select(Platform.name, OutboxItem.state, func.count())
        .join(Platform, Platform.id == OutboxItem.platform_id)
        .group_by(Platform.name, OutboxItem.state)
        .order_by(Platform.name, OutboxItem.state)
    ).all()
    if not rows:
        click.echo("The outbox is empty.")
    for name, state, count in rows:
        click.echo(f"{name:<20} {state:<10} {count}")


@outbox_group.command("sweep")
@with_app
def outbox_sweep(app: Flask) -> None:
    """Re-enqueue rows whose job was lost (what the scheduler does every 10 s)."""
    from gateway.sync.jobs import sweep

    result = sweep()
    click.echo(f"{result['reenqueued']} re-enqueued, {result['expired_leases']} lease(s) expired.")

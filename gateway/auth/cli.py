"""`gateway clients ...` and `gateway keys ...`: relying parties, machine clients, signing keys."""

from __future__ import annotations

import json

import click
from flask import Flask

from gateway.auth import keys
from gateway.auth.clients import ClientError, create_client, list_clients, revoke_client
from gateway.auth.models import OAuthClient
from gateway.commands import fail, with_app


def _client_dict(client: OAuthClient) -> dict:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "public": client.is_public,
        "first_party": client.skip_consent,
        "scope": client.scope,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "grant_types": client.grant_types,
        "created_at": client.created_at.isoformat(),
        "revoked_at": client.revoked_at.isoformat() if client.revoked_at else None,
    }


@click.group("clients")
def clients_group() -> None:
    """OAuth clients: the website, the demo site, partner back ends."""


@clients_group.command("create")
@click.option("--name", required=True, help="Shown to members on the consent screen.")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Exact URI (repeatable).")
@click.option("--post-logout-redirect-uri", "logout_uris", multiple=True, help="(repeatable)")
@click.option("--scope", required=True, help='Space-separated, e.g. "openid profile email".')
@click.option("--public", is_flag=True, help="A browser or mobile app: no secret, PKCE only.")
@click.option("--first-party", is_flag=True, help="The project's own site: no consent screen.")
@click.option("--client-id", default=None, help="Choose the id (default: random).")
@click.option("--json", "as_json", is_flag=True, help="Print the client as JSON.")
@with_app(needs_redis=False)
def clients_create(
    app: Flask,
    name: str,
    redirect_uris: tuple[str, ...],
    logout_uris: tuple[str, ...],
    scope: str,
    public: bool,
    first_party: bool,
    client_id: str | None,
    as_json: bool,
) -> None:
    """Register a client. Its secret is printed once and stored only as a hash."""
    try:
        new = create_client(
            name,
            scope,
            redirect_uris=redirect_uris,
            post_logout_redirect_uris=logout_uris,
            public=public,
            first_party=first_party,
            client_id=client_id,
        )
    except ClientError as error:
        fail(str(error))
    data = {**_client_dict(new.client), "client_secret": new.secret}
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"client_id:     {data['client_id']}")
    if new.secret:
        click.echo(f"client_secret: {new.secret}")
        click.echo("Store the secret now: it is not shown again.")


@clients_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@with_app(needs_redis=False)
def clients_list(app: Flask, as_json: bool) -> None:
    """Every client, newest first (secrets are never shown)."""
    clients = [_client_dict(c) for c in list_clients()]
    if as_json:
        click.echo(json.dumps(clients, indent=2))
        return
    for c in clients:
        state = "revoked" if c["revoked_at"] else "active"
        kind = "public" if c["public"] else "confidential"
        click.echo(f"{c['client_id']}\t{state}\t{kind}\t{c['name']}\t{c['scope']}")


@clients_group.command("revoke")
@click.argument("client_id")
@with_app(needs_redis=False)
def clients_revoke(app: Flask, client_id: str) -> None:
    """Revoke a client and every token it holds."""
    try:
        revoke_client(client_id)
    except ClientError as error:
        fail(str(error))
    click.echo(f"Revoked {client_id} and its tokens.")


@click.group("keys")
def keys_group() -> None:
    """The keys that sign ID tokens."""


@keys_group.command("rotate")
@with_app(needs_redis=False)
def keys_rotate(app: Flask) -> None:
    """Sign with a new key; older keys stay published until their tokens have expired."""
    new, previous = keys.rotate()
    click.echo(f"Signing with {new.kid}.")
    for row in previous:
        click.echo(f"{row.kid} stays published until {row.retire_after:%Y-%m-%d %H:%M:%S} UTC.")


@keys_group.command("list")
@with_app(needs_redis=False)
def keys_list(app: Flask) -> None:
    """Published keys: the signer first."""
    keys.ensure_signing_key()
    for row in keys.published_keys():
        state = (
            "signing"
            if row.superseded_at is None
            else f"retires {row.retire_after:%Y-%m-%d %H:%M} UTC"
        )
        click.echo(f"{row.kid}\t{row.algorithm}\t{state}")

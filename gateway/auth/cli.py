"""`gateway clients ...` and `gateway keys ...`: relying parties, machine clients, signing keys."""

from __future__ import annotations

import json

import click
from flask import Flask

from gateway.auth import keys
from gateway.auth.clients import ClientError, create_client, list_clients, revoke_client
from gateway.auth.kinds import CLIENT_CREDENTIALS, CODE, KINDS
from gateway.auth.models import OAuthClient
from gateway.commands import fail, with_app


def _client_dict(client: OAuthClient) -> dict:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "kind": client.kind,
        "public": client.is_public,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "scope": client.scope,
        "default_scope": client.default_scope,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "grant_types": client.grant_types,
        "created_at": client.created_at.isoformat(),
        "revoked_at": client.revoked_at.isoformat() if client.revoked_at else None,
    }


def _read_jwks(path: str | None) -> dict | None:
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ClientError(f"cannot read the JWK set in {path}: {exc}.") from None
    if not isinstance(data, dict):
        raise ClientError(f"{path} does not hold a JWK set (a JSON object with 'keys').")
    return data


@click.group("clients")
def clients_group() -> None:
    """OAuth clients: the website, the demo site, relying parties, machine clients."""


@clients_group.command("create")
@click.option("--name", required=True, help="Shown to members on the consent screen.")
@click.option(
    "--kind",
    required=True,
    type=click.Choice(KINDS),
    help="first_party: the project's website (no consent screen); third_party: a relying "
    "party (members' tokens only, after consent); machine: a back end (client credentials).",
)
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Exact URI (repeatable).")
@click.option("--post-logout-redirect-uri", "logout_uris", multiple=True, help="(repeatable)")
@click.option("--scope", required=True, help='Space-separated, e.g. "openid profile email".')
@click.option(
    "--default-scope",
    default=None,
    help="What a token request naming no scope gets (default: the whole --scope).",
)
@click.option(
    "--grant",
    "grants",
    multiple=True,
    type=click.Choice([CODE, CLIENT_CREDENTIALS]),
    help=f"Add a grant (repeatable): {CLIENT_CREDENTIALS} gives a first-party client its "
    f"back end's own tokens. Redirect URIs imply {CODE}; a machine client has "
    f"{CLIENT_CREDENTIALS} only.",
)
@click.option("--public", is_flag=True, help="A browser or mobile app: no secret, PKCE only.")
@click.option(
    "--jwks-file",
    default=None,
    help="A public JWK set: the client authenticates with private_key_jwt and gets no secret.",
)
@click.option("--client-id", default=None, help="Choose the id (default: random).")
@click.option("--json", "as_json", is_flag=True, help="Print the client as JSON.")
@with_app(needs_redis=False)
def clients_create(
    app: Flask,
    name: str,
    kind: str,
    redirect_uris: tuple[str, ...],
    logout_uris: tuple[str, ...],
    scope: str,
    default_scope: str | None,
    grants: tuple[str, ...],
    public: bool,
    jwks_file: str | None,
    client_id: str | None,
    as_json: bool,
) -> None:
    """Register a client. Its secret is printed once and stored only as a hash."""
    try:
        new = create_client(
            name,
            scope,
            kind=kind,
            redirect_uris=redirect_uris,
            post_logout_redirect_uris=logout_uris,
            public=public,
            grants=grants,
            default_scope=default_scope,
            jwks=_read_jwks(jwks_file),
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
        access = "public" if c["public"] else "confidential"
        click.echo(f"{c['client_id']}\t{state}\t{c['kind']}\t{access}\t{c['name']}\t{c['scope']}")


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

"""The website a member came from: its name and address, for the header's link back and for
the "continue" button that ends every flow.

Members reach the gateway's pages from a site, through an authorization request: the
project's website, the demo site, a third-party app. The gateway remembers that client for
the browser session (its id, nothing more). When it is a first-party site, the header shows
its name and links back to its home page: the first post-logout redirect URI it registered
(the page the site chose for members who leave it), else the root of its first redirect URI.
A logged-in member whose browser came from no site (a mail's link opened in another
browser) is led back to the first-party site they last used. Otherwise the header stays the
project's own (a third-party app's name at the top of the gateway's consent page would pass
the app off as the project) and links to the project's website, ``GATEWAY_SITE_URL``, or
without one to the gateway's home page. A flow that a third-party app started still ends
with a button back to that app (``way_back``).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from flask import current_app, g, session
from sqlalchemy import select

from gateway.auth.kinds import FIRST_PARTY
from gateway.auth.models import OAuthClient, OAuthToken
from gateway.auth.session import current_session_member
from gateway.db import db
from gateway.i18n import gettext
from gateway.security_headers import allow_form_action, origin

SESSION_KEY = "site"  # kept across login and logout (gateway.auth.session._BROWSER_KEYS)
AUTHORIZE_PATH = "/oauth/authorize"


@dataclass(frozen=True)
class Site:
    """Where "back to the site" leads: a name to show and an address (``external`` if it
    leaves the gateway)."""

    name: str
    url: str
    external: bool


def remember_site(client: OAuthClient) -> None:
    """The member arrived through ``client``'s authorization request: link back to it."""
    if session.get(SESSION_KEY) != client.client_id:
        session[SESSION_KEY] = client.client_id
    g.pop("site", None)


def _client(client_id: object) -> OAuthClient | None:
    if not isinstance(client_id, str) or not client_id:
        return None
    client = db.session.scalar(select(OAuthClient).where(OAuthClient.client_id == client_id))
    return client if client is not None and client.revoked_at is None else None


def _home_of(client: OAuthClient) -> str | None:
    for uri in client.post_logout_redirect_uris or ():
        if origin(uri):
            return uri
    for uri in client.redirect_uris or ():
        root = origin(uri)
        if root:
            return f"{root}/"
    return None


def _first_party_site(client: OAuthClient | None) -> Site | None:
    home = _home_of(client) if client is not None and client.kind == FIRST_PARTY else None
    return Site(client.name, home, True) if client is not None and home else None


def last_site_of(member_id: str) -> Site | None:
    """The first-party site that most recently got tokens for the member, if any: where a
    member who reached the gateway without going through a site (a mail's link opened in
    another browser) most likely came from."""
    clients = db.session.scalars(
        select(OAuthClient)
        .join(OAuthToken, OAuthToken.client_id == OAuthClient.client_id)
        .where(
            OAuthToken.member_id == member_id,
            OAuthClient.kind == FIRST_PARTY,
            OAuthClient.revoked_at.is_(None),
        )
        .order_by(OAuthToken.issued_at.desc())
        .limit(20)
    )
    return next((site for site in map(_first_party_site, clients) if site), None)


def current_site() -> Site:
    """The site this browser came from (see the module's docstring), else the first-party
    site the logged-in member last used.

    A page that links to an external site may also send the member there from its header's
    logout form, so the page's ``form-action`` allows that site.
    """
    if "site" in g:
        return g.site
    site = _first_party_site(_client(session.get(SESSION_KEY)))
    if site is None:
        member = current_session_member()
        site = last_site_of(member.id) if member is not None else None
    if site is None:
        website = current_app.config.get("GATEWAY_SITE_URL")
        site = Site(gettext("common.site_name"), website or "/", bool(website))
    if site.external:
        allow_form_action(site.url)
    g.site = site
    return site


def client_of_next(next_url: str | None) -> OAuthClient | None:
    """The client whose authorization request ``next_url`` is, if it is one."""
    parts = urlsplit(next_url or "")
    if parts.scheme or parts.netloc or parts.path != AUTHORIZE_PATH:
        return None
    client_ids = parse_qs(parts.query).get("client_id")
    return _client(client_ids[0]) if client_ids else None


@dataclass(frozen=True)
class WayBack:
    """The "continue" button at the end of a flow: where it leads, and the site it names
    (None when it stays on the gateway, or the site is unknown)."""

    url: str
    site: str | None


def way_back(next_url: str | None) -> WayBack | None:
    """Where a member goes on to when a flow ends: the page that sent them (often a site's
    authorization request, which ends on the site), else the site they came from."""
    if next_url:
        client = client_of_next(next_url)
        return WayBack(next_url, client.name if client is not None else None)
    site = current_site()
    return WayBack(site.url, site.name) if site.external else None

"""`gateway run`'s development wiring: the sandbox timebank and the demo site.

Both are development tools of their own distribution (``devtools/``, community-gateway-devtools),
never part of the gateway's, which imports none of them: it runs them, when present, as the
``gateway`` commands that distribution adds (``gateway.dev_tools``), and speaks to them over HTTP.
On embedded defaults the gateway federates with the sandbox out of the box: the platform
"sandbox" is added once (TimeRepublik connector, the sandbox's development credentials), and
the sandbox is told where to send its signed callbacks. The demo site is registered as a
first-party client whose secret is renewed at every start and handed to its process.
"""

from __future__ import annotations

import logging
import secrets

from flask import Flask
from sqlalchemy import select

from gateway.auth.clients import create_client
from gateway.auth.kinds import FIRST_PARTY
from gateway.auth.models import OAuthClient, hash_client_secret
from gateway.db import db
from gateway.federation.models import Platform
from gateway.federation.platforms import active_secrets, add_platform, register_webhook

log = logging.getLogger(__name__)

SANDBOX_PLATFORM = "sandbox"
# The sandbox's public development client (its settings module): not a secret.
SANDBOX_CREDENTIALS = {"client_id": "gateway", "client_secret": "sandbox-secret"}


def ensure_sandbox_platform(app: Flask, sandbox_url: str) -> Platform:
    """Add the sandbox platform if missing and (re-)register our callback endpoint with it."""
    with app.app_context():
        platform = db.session.scalar(select(Platform).where(Platform.name == SANDBOX_PLATFORM))
        if platform is None:
            platform = add_platform(
                SANDBOX_PLATFORM,
                "timerepublik",
                sandbox_url,
                credentials=SANDBOX_CREDENTIALS,
                options={"clearing_wallet_id": "w_clearing"},
                display_name="Sandbox timebank",
            )
            db.session.commit()
        elif platform.base_url != sandbox_url:
            platform.base_url = sandbox_url
            db.session.commit()
        known = [s.secret for s in active_secrets(platform)]
        # Re-registering with the secret we hold keeps one secret across restarts.
        registration = register_webhook(platform, secret=next(iter(known), None))
        db.session.commit()
        log.info("sandbox platform ready; callbacks go to %s", registration.url)
        return platform


DEMO_CLIENT_ID = "demo-site"
# What the demo site's client may ask for; the site asks for exactly this.
DEMO_SCOPE = "openid profile email offline_access hours:read"


def ensure_demo_client(app: Flask, demo_url: str) -> str | None:
    """Register (or refresh) the demo site's client; its new secret, or None if revoked."""
    with app.app_context():
        client = db.session.scalar(
            select(OAuthClient).where(OAuthClient.client_id == DEMO_CLIENT_ID)
        )
        if client is None:
            return create_client(
                "Demo site",
                DEMO_SCOPE,
                redirect_uris=[f"{demo_url}/callback"],
                post_logout_redirect_uris=[f"{demo_url}/"],
                kind=FIRST_PARTY,
                client_id=DEMO_CLIENT_ID,
            ).secret
        if client.revoked_at is not None:
            log.warning("the demo site's client was revoked by an operator; not starting it")
            return None
        secret = secrets.token_urlsafe(32)
        client.secret_hash = hash_client_secret(secret)
        client.redirect_uris = [f"{demo_url}/callback"]
        client.post_logout_redirect_uris = [f"{demo_url}/"]
        db.session.commit()
        return secret

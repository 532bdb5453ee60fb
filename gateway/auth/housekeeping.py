"""Pruning what the provider no longer needs: spent codes and long-dead tokens."""

from __future__ import annotations

import time

from sqlalchemy import and_, delete, or_

from gateway.auth import keys
from gateway.auth.models import AuthorizationCode, ClientAssertion, OAuthToken
from gateway.db import db, rows_affected
from gateway.jobs import task

# Codes are kept after use so a replay is recognised (and punished) and a reused nonce is
# refused; a day is far beyond a code's minute of life.
CODE_RETENTION_SECONDS = 24 * 3600
# Revoked or expired tokens are kept a while for introspection answers and investigations.
TOKEN_RETENTION_SECONDS = 30 * 24 * 3600


@task
def prune_sign_on(now: float | None = None) -> dict[str, int]:
    """Delete old codes, long-expired tokens, expired assertions' jtis and retired keys."""
    now = now or time.time()
    codes = rows_affected(
        db.session.execute(
            delete(AuthorizationCode).where(
                AuthorizationCode.issued_at < now - CODE_RETENTION_SECONDS
            )
        )
    )
    cutoff = now - TOKEN_RETENTION_SECONDS
    refresh_dead = or_(
        OAuthToken.refresh_token_hash.is_(None),
        OAuthToken.issued_at + OAuthToken.refresh_expires_in < cutoff,
        OAuthToken.revoked_at < cutoff,
    )
    tokens = rows_affected(
        db.session.execute(
            delete(OAuthToken).where(
                and_(OAuthToken.issued_at + OAuthToken.expires_in < cutoff, refresh_dead)
            )
        )
    )
    # An expired client assertion is refused for its expiry: its jti need not be kept.
    assertions = rows_affected(
        db.session.execute(delete(ClientAssertion).where(ClientAssertion.expires_at < now))
    )
    retired = keys.prune()
    db.session.commit()
    return {
        "codes": codes or 0,
        "tokens": tokens or 0,
        "assertions": assertions or 0,
        "keys": retired,
    }

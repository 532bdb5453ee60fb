"""The provider's signing keys: one signs, older ones stay published until their tokens expire.

Private keys are stored encrypted at rest (``GATEWAY_ENCRYPTION_KEYS``). ``rotate`` makes a new
key the signer and schedules the old one's retirement one ID-token lifetime later, so a relying
party that cached the JWKS can still verify every token the old key signed.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta

from joserfc.jwk import RSAKey
from sqlalchemy import delete, or_, select

from gateway.auth.models import SigningKey
from gateway.crypto import decrypt_text, encrypt_text
from gateway.db import db, rows_affected, utcnow

ALGORITHM = "RS256"
KEY_SIZE = 2048
# ID tokens live an hour; a retired key stays published a little longer for clock skew.
ID_TOKEN_LIFETIME = 3600
RETIREMENT_MARGIN = timedelta(minutes=5)

_private_cache: dict[str, RSAKey] = {}


def _new_key() -> SigningKey:
    kid = f"{utcnow():%Y%m%d}-{secrets.token_hex(4)}"
    key = RSAKey.generate_key(
        KEY_SIZE, parameters={"kid": kid, "alg": ALGORITHM, "use": "sig"}, private=True
    )
    row = SigningKey(
        kid=kid,
        algorithm=ALGORITHM,
        private_jwk_encrypted=encrypt_text(json.dumps(key.as_dict(private=True))),
        public_jwk=key.as_dict(private=False),
    )
    db.session.add(row)
    db.session.flush()
    return row


def _current_row() -> SigningKey | None:
    return db.session.scalar(
        select(SigningKey)
        .where(SigningKey.superseded_at.is_(None))
        .order_by(SigningKey.created_at.desc())
        .limit(1)
    )


def ensure_signing_key() -> SigningKey:
    """The key that signs now, created (and committed) if there is none yet."""
    row = _current_row()
    if row is None:
        row = _new_key()
        db.session.commit()
    return row


def signing_key() -> RSAKey:
    """The private key that signs new ID tokens."""
    row = ensure_signing_key()
    key = _private_cache.get(row.kid)
    if key is None:
        key = RSAKey.import_key(json.loads(decrypt_text(row.private_jwk_encrypted)))
        _private_cache[row.kid] = key
    return key


def rotate(now: datetime | None = None) -> tuple[SigningKey, list[SigningKey]]:
    """Make a new key the signer; returns it and the keys it superseded (still published)."""
    now = now or utcnow()
    previous = list(
        db.session.scalars(select(SigningKey).where(SigningKey.superseded_at.is_(None)))
    )
    for row in previous:
        row.superseded_at = now
        row.retire_after = now + timedelta(seconds=ID_TOKEN_LIFETIME) + RETIREMENT_MARGIN
    db.session.flush()
    new = _new_key()
    prune(now)
    db.session.commit()
    return new, previous


def prune(now: datetime | None = None) -> int:
    """Delete keys whose retirement time has passed; returns how many."""
    now = now or utcnow()
    result = db.session.execute(
        delete(SigningKey).where(
            SigningKey.retire_after.is_not(None), SigningKey.retire_after < now
        )
    )
    return rows_affected(result)


def published_keys(now: datetime | None = None) -> list[SigningKey]:
    """Every key a relying party may still need: the signer and those not yet retired."""
    now = now or utcnow()
    return list(
        db.session.scalars(
            select(SigningKey)
            .where(or_(SigningKey.retire_after.is_(None), SigningKey.retire_after >= now))
            .order_by(SigningKey.created_at.desc())
        )
    )


def jwks() -> dict:
    """The public JSON Web Key Set."""
    ensure_signing_key()
    return {"keys": [dict(row.public_jwk) for row in published_keys()]}

"""Encryption at rest for secrets the gateway must be able to read back (platform credentials).

Keys come from ``GATEWAY_ENCRYPTION_KEYS`` (comma-separated Fernet keys: the first encrypts, all
decrypt, so keys rotate without re-encrypting at once); by default one key is derived from
``SECRET_KEY``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app


class DecryptionError(Exception):
    """A stored secret cannot be decrypted with any configured key."""


def derive_key(secret_key: str) -> bytes:
    """A Fernet key derived from the app's secret key (HKDF-SHA256, fixed context)."""
    raw = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"gateway-encryption-at-rest"
    ).derive(secret_key.encode())
    return base64.urlsafe_b64encode(raw)


def cipher(config: Mapping[str, Any]) -> MultiFernet:
    """The keys of an app's ``config``, for code that runs outside its application context."""
    keys = config.get("ENCRYPTION_KEYS") or [derive_key(config["SECRET_KEY"])]
    return MultiFernet([Fernet(key) for key in keys])


def _fernet() -> MultiFernet:
    return cipher(current_app.config)


def encrypt_text(plaintext: str) -> str:
    """Encrypt ``plaintext`` with the current key."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt_text(token: str) -> str:
    """Decrypt a value made by ``encrypt_text`` with any configured key."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError(
            "a stored secret cannot be decrypted with the configured keys"
        ) from None


def encrypt_json(value: Any) -> str:
    """Encrypt a JSON-serialisable value."""
    return encrypt_text(json.dumps(value, separators=(",", ":"), sort_keys=True))


def decrypt_json(token: str) -> Any:
    """Decrypt a value made by ``encrypt_json``."""
    return json.loads(decrypt_text(token))

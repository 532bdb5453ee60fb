"""Scrubbing secrets and personal data out of log lines, whatever logger wrote them.

Libraries log what they like (request lines with query strings, token dictionaries at DEBUG),
so the scrubbing happens on the final message of every record, not at each call site.
"""

from __future__ import annotations

import re

_SENSITIVE = (
    "password|passwd|secret|client_secret|token|access_token|refresh_token|id_token|"
    "id_token_hint|code|code_verifier|login_hint|authorization|cookie|session|api_key"
)
_PATTERNS = (
    # Authorization headers and bearer tokens, anywhere.
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 [redacted]"),
    # Standard Webhooks secrets.
    (re.compile(r"whsec_[A-Za-z0-9+/=]+"), "whsec_[redacted]"),
    # key=value in query strings and forms, key: value / "key": "value" in dicts and JSON.
    (
        re.compile(rf"(?i)\b({_SENSITIVE})=([^&\s\"',;)]+)"),
        r"\1=[redacted]",
    ),
    (
        re.compile(rf"(?i)([\"']?\b({_SENSITIVE})[\"']?\s*[:=]\s*)([\"'])(.*?)\3"),
        r"\1\3[redacted]\3",
    ),
    # Email addresses (personal data).
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "[email]"),
    # JSON Web Tokens.
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[jwt]"),
)


def redact(text: str) -> str:
    """``text`` with secrets and personal data replaced."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text

"""Reading typed fields out of decoded JSON, with errors that name the field.

A platform that answers with a missing or mistyped field gets a ``PermanentError`` (code
``bad_response``, or the code the caller passes, e.g. ``malformed_event`` for callbacks): the
same answer would come again, so retrying cannot help.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.errors import PermanentError

__all__ = [
    "Malformed",
    "as_mapping",
    "optional_str",
    "require_datetime",
    "require_int",
    "require_str",
    "rfc3339",
]


class Malformed(PermanentError):
    """A document from a platform does not have the shape its contract promises."""


def as_mapping(value: Any, where: str, code: str = "bad_response") -> Mapping[str, Any]:
    """``value`` if it is a JSON object, else ``Malformed`` naming ``where``."""
    if not isinstance(value, Mapping):
        raise Malformed(f"{where} is not a JSON object", code)
    return value


def _without_nul(value: str, key: str, code: str) -> str:
    # No store of ours can keep a NUL (PostgreSQL text cannot): refused as malformed.
    if "\x00" in value:
        raise Malformed(f"field {key!r} holds a NUL character", code)
    return value


def require_str(obj: Mapping[str, Any], key: str, code: str = "bad_response") -> str:
    """The string field ``key``; ``Malformed`` if absent or not a string."""
    value = obj.get(key)
    if not isinstance(value, str):
        raise Malformed(f"field {key!r} is missing or not a string", code)
    return _without_nul(value, key, code)


def optional_str(obj: Mapping[str, Any], key: str, code: str = "bad_response") -> str | None:
    """The string field ``key``, or None when absent or null."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Malformed(f"field {key!r} is not a string", code)
    return _without_nul(value, key, code)


def require_int(obj: Mapping[str, Any], key: str, code: str = "bad_response") -> int:
    """The integer field ``key`` (a float with no fraction is accepted: JSON has one number)."""
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Malformed(f"field {key!r} is missing or not a number", code)
    if isinstance(value, float):
        if not value.is_integer():
            raise Malformed(f"field {key!r} is not a whole number", code)
        value = int(value)
    return value


def require_datetime(obj: Mapping[str, Any], key: str, code: str = "bad_response") -> datetime:
    """The RFC 3339 date-time field ``key`` as an aware UTC datetime."""
    raw = require_str(obj, key, code)
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise Malformed(f"field {key!r} is not an RFC 3339 date-time", code) from None
    if value.tzinfo is None:
        raise Malformed(f"field {key!r} has no time zone", code)
    return value.astimezone(UTC)


def rfc3339(value: datetime) -> str:
    """``value`` as an RFC 3339 UTC string (a naive datetime is taken to be UTC)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")

"""Fault injection: the ways a real platform misbehaves, switched on at will.

Knobs (environment variable / ``POST /_sandbox/faults`` field):

| field (env: SANDBOX_ + upper case) | effect |
|---|---|
| error_rate | fraction (0..1) of API requests answered 500 or 503 |
| latency_ms | delay added before every API request is handled |
| burst_429 | the next N API requests are answered 429 with Retry-After |
| throttle_rate | fraction of API requests answered 429 with Retry-After |
| retry_after_seconds | the Retry-After of those 429s (default 1) |
| drop_rate | fraction of API requests whose connection is closed unanswered |
| drop_next | the next N API requests are dropped that way |
| lost_response_rate | fraction of API requests handled (a write applied) whose answer is lost |
| duplicate_webhooks | every webhook is delivered twice (same webhook-id) |
| duplicate_webhook_rate | fraction of webhooks delivered twice |
| reorder_webhooks | webhooks wait until none came for a window, then go newest first |
| reorder_webhook_rate | fraction of webhooks held back up to the window, so later ones overtake |
| reorder_window_ms | that window (default 500) |

API requests are ``/v1/...`` and ``/oauth/token``; ``/_sandbox/...`` is never faulted, so faults
can always be switched off. Settings live in the database, shared by every process serving it;
counters (``burst_429``, ``drop_next``) are consumed atomically. The dice are thrown in the
order of the table (drop, 429, error, lost answer), each on the requests the ones before let
through: ``lost_response_rate`` is a share of the requests the partner really handles. Every fault
injected is counted (``GET /_sandbox/faults/injected``).
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from werkzeug.wrappers import Response

from gateway.config import ConfigError

__all__ = [
    "FAULTED_PREFIXES",
    "FaultMiddleware",
    "Faults",
    "count_fault",
    "injected_faults",
    "load_faults",
    "save_faults",
]

FAULTED_PREFIXES = ("/v1/", "/oauth/token")
MAX_LATENCY_MS = 60_000  # a bound, so a typo cannot hang a worker for hours

ENVIRONMENT = {
    "error_rate": "SANDBOX_ERROR_RATE",
    "latency_ms": "SANDBOX_LATENCY_MS",
    "burst_429": "SANDBOX_BURST_429",
    "throttle_rate": "SANDBOX_THROTTLE_RATE",
    "retry_after_seconds": "SANDBOX_RETRY_AFTER_SECONDS",
    "drop_rate": "SANDBOX_DROP_RATE",
    "drop_next": "SANDBOX_DROP_NEXT",
    "lost_response_rate": "SANDBOX_LOST_RESPONSE_RATE",
    "duplicate_webhooks": "SANDBOX_DUPLICATE_WEBHOOKS",
    "duplicate_webhook_rate": "SANDBOX_DUPLICATE_WEBHOOK_RATE",
    "reorder_webhooks": "SANDBOX_REORDER_WEBHOOKS",
    "reorder_webhook_rate": "SANDBOX_REORDER_WEBHOOK_RATE",
    "reorder_window_ms": "SANDBOX_REORDER_WINDOW_MS",
}
COUNTERS = ("burst_429", "drop_next")
RATES = (
    "error_rate",
    "throttle_rate",
    "drop_rate",
    "lost_response_rate",
    "duplicate_webhook_rate",
    "reorder_webhook_rate",
)


@dataclass(frozen=True)
class Faults:
    """The fault settings in force."""

    error_rate: float = 0.0
    latency_ms: int = 0
    burst_429: int = 0
    throttle_rate: float = 0.0
    retry_after_seconds: int = 1
    drop_rate: float = 0.0
    drop_next: int = 0
    lost_response_rate: float = 0.0
    duplicate_webhooks: bool = False
    duplicate_webhook_rate: float = 0.0
    reorder_webhooks: bool = False
    reorder_webhook_rate: float = 0.0
    reorder_window_ms: int = 500

    def __post_init__(self) -> None:
        for name in RATES:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {value}")
        if not 0 <= self.latency_ms <= MAX_LATENCY_MS:
            raise ValueError(f"latency_ms must be between 0 and {MAX_LATENCY_MS}")
        for name in ("burst_429", "drop_next", "retry_after_seconds", "reorder_window_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], base: Faults | None = None) -> Faults:
        """``base`` (default: no faults) with ``values`` applied; ValueError if one is wrong."""
        known = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(unknown)}")
        converted: dict[str, Any] = {}
        for name, value in values.items():
            converted[name] = _convert(name, known[name], value)
        return replace(base or cls(), **converted)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Faults:
        """The faults the ``SANDBOX_*`` environment variables ask for."""
        values = {
            name: environ[variable]
            for name, variable in ENVIRONMENT.items()
            if environ.get(variable, "") != ""
        }
        try:
            return cls.from_mapping(values)
        except ValueError as exc:
            raise ConfigError(f"Sandbox fault settings: {exc}.") from None

    def as_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready values."""
        return asdict(self)


def _convert(name: str, kind: Any, value: Any) -> Any:
    kind = str(kind)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).strip().lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{name} must be true or false, not {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, not {value!r}") from None
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, not {value!r}")
    if kind == "int":
        if not number.is_integer():
            raise ValueError(f"{name} must be a whole number, not {value!r}")
        return int(number)
    return number


def save_faults(connection: sqlite3.Connection, faults: Faults) -> None:
    """Store ``faults`` as the settings in force."""
    connection.executemany(
        "INSERT INTO faults (name, value) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        [(name, json.dumps(value)) for name, value in faults.as_dict().items()],
    )


def load_faults(connection: sqlite3.Connection, default: Faults) -> Faults:
    """The settings in force (``default`` for any not stored)."""
    rows = connection.execute("SELECT name, value FROM faults").fetchall()
    stored = {row["name"]: json.loads(row["value"]) for row in rows}
    known = {f.name for f in fields(Faults)}
    return Faults.from_mapping({k: v for k, v in stored.items() if k in known}, base=default)


def count_fault(connection: sqlite3.Connection, kind: str) -> None:
    """Count one fault of ``kind`` as injected."""
    connection.execute(
        "INSERT INTO injected_faults (kind, count) VALUES (?, 1) "
        "ON CONFLICT (kind) DO UPDATE SET count = count + 1",
        (kind,),
    )


def injected_faults(connection: sqlite3.Connection) -> dict[str, int]:
    """How many faults of each kind were injected since the sandbox was set up."""
    rows = connection.execute("SELECT kind, count FROM injected_faults ORDER BY kind").fetchall()
    return {row["kind"]: row["count"] for row in rows}


def _consume(connection: sqlite3.Connection, counter: str) -> bool:
    """Take one from ``counter`` if it is above zero; True if this request took it."""
    cursor = connection.execute(
        "UPDATE faults SET value = CAST(value AS INTEGER) - 1 "
        "WHERE name = ? AND CAST(value AS INTEGER) > 0",
        (counter,),
    )
    return cursor.rowcount == 1


def _problem(
    status: int, code: str, detail: str, headers: Iterable[tuple[str, str]] = ()
) -> Response:
    body = {
        "type": "about:blank",
        "title": _TITLES[status],
        "status": status,
        "code": code,
        "detail": detail,
    }
    response = Response(json.dumps(body), status=status, content_type="application/problem+json")
    for name, value in headers:
        response.headers[name] = value
    return response


_TITLES = {429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


def _drop(environ: dict[str, Any]) -> None:
    """Close the client's connection without an answer."""
    sock = environ.get("werkzeug.socket") or environ.get("gunicorn.socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # already gone: the client sees the same thing
            sock.shutdown(socket.SHUT_RDWR)
    # werkzeug's server treats a ConnectionError raised by the app as a dropped connection and
    # writes nothing more; the shut-down socket makes sure no other server answers either.
    raise ConnectionAbortedError("sandbox fault: connection dropped")


class FaultMiddleware:
    """WSGI middleware that applies the faults in force around the app's handling of a request."""

    def __init__(
        self,
        app: Callable[..., Any],
        store_connection: Callable[[], AbstractContextManager[sqlite3.Connection]],
        default: Faults,
        *,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.app = app
        self._connection = store_connection
        self.default = default
        self._rng = rng or random.Random()  # noqa: S311 - fault dice, not cryptography
        self._sleep = sleep

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(FAULTED_PREFIXES):
            return self.app(environ, start_response)
        with self._connection() as connection:
            faults = load_faults(connection, self.default)
        if faults.latency_ms:
            self._sleep(faults.latency_ms / 1000)
        with self._connection() as connection:
            response, lose = self._fault(connection, faults, environ)
        if response is not None:
            return response(environ, start_response)
        if lose:
            self._handle_then_lose(environ)
        return self.app(environ, start_response)

    def _fault(
        self, connection: sqlite3.Connection, faults: Faults, environ: dict[str, Any]
    ) -> tuple[Response | None, bool]:
        """The answer that replaces the app's (if any), and whether the app's answer is lost."""
        if (faults.drop_next and _consume(connection, "drop_next")) or self._roll(faults.drop_rate):
            count_fault(connection, "dropped")
            _drop(environ)
        if (faults.burst_429 and _consume(connection, "burst_429")) or self._roll(
            faults.throttle_rate
        ):
            count_fault(connection, "throttled_429")
            retry_after = str(faults.retry_after_seconds)
            response = _problem(
                429, "rate_limited", "sandbox fault: rate limited", [("Retry-After", retry_after)]
            )
            return response, False
        if self._roll(faults.error_rate):
            status = self._rng.choice((500, 503))
            count_fault(connection, f"error_{status}")
            return _problem(status, "sandbox_fault", "sandbox fault: server error"), False
        if self._roll(faults.lost_response_rate):
            count_fault(connection, "lost_response")
            return None, True
        return None, False

    def _roll(self, rate: float) -> bool:
        return bool(rate) and self._rng.random() < rate

    def _handle_then_lose(self, environ: dict[str, Any]) -> None:
        """Let the app handle the request to the end (its write committed), then hang up."""

        def start_response(*_args: Any) -> Callable[[bytes], None]:
            return lambda _data: None

        body = self.app(environ, start_response)
        try:
            for _chunk in body:
                pass
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        _drop(environ)

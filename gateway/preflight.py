"""Start-up checks: one readable sentence when a service the gateway needs does not answer."""

from __future__ import annotations

from flask import Flask
from redis import RedisError
from sqlalchemy.exc import SQLAlchemyError

from gateway.config import redact_url


class StartupError(Exception):
    """A required service is unreachable; the message says which and why."""


def _first_line(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()
    return text[0] if text else type(cause).__name__


def check_services(app: Flask, *, redis: bool = True) -> None:
    """Raise ``StartupError`` unless the database (and Redis, when asked) answer."""
    try:
        app.extensions["db"].ping()
    except SQLAlchemyError as exc:
        raise StartupError(
            f"Cannot reach the database at {redact_url(app.config['DATABASE_URL'])}: "
            f"{_first_line(exc)}"
        ) from None
    if not redis:
        return
    try:
        app.extensions["redis"].ping()
    except RedisError as exc:
        raise StartupError(
            f"Cannot reach Redis at {redact_url(app.config['REDIS_URL'])}: {_first_line(exc)}"
        ) from None

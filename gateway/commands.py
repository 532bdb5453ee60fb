"""What every `gateway` command shares: the app it runs on, and one way to fail.

Kept apart from the command groups so that a domain's commands (``gateway/*/cli.py``) can be
imported on their own: they import this module, and ``gateway.cli`` imports them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn, TypeVar

import click
from flask import Flask
from flask.cli import ScriptInfo

from gateway.config import ConfigError
from gateway.embedded_redis import EmbeddedRedisError
from gateway.preflight import StartupError, check_services

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CONFIG = 2


def fail(message: str) -> NoReturn:
    """Print one readable error line and exit with code 2."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(EXIT_CONFIG)


def load_app(
    config: dict[str, Any] | None = None, *, check: bool = True, needs_redis: bool = True
) -> Flask:
    """The app of this command: Flask's when run by `flask --app`, else a new one."""
    try:
        ctx = click.get_current_context(silent=True)
        info = ctx.find_object(ScriptInfo) if ctx else None
        if info is not None and config is None:
            app = info.load_app()
        else:
            from gateway import create_app

            overrides = dict(config or {})
            if not needs_redis:
                overrides.setdefault("START_EMBEDDED_REDIS", False)
            app = create_app(overrides)
        if check:
            check_services(app, redis=needs_redis)
    except (ConfigError, EmbeddedRedisError, StartupError) as exc:
        fail(str(exc))
    return app


def with_app(func: F | None = None, *, needs_redis: bool = True) -> Any:
    """Give the command the app as its first argument, inside an application context.

    Commands that only touch the database pass ``needs_redis=False``: they neither start an
    embedded Redis nor fail when none answers (their jobs wait in the outbox for the sweeper).
    """

    def decorate(command: F) -> F:
        @wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            app = load_app(needs_redis=needs_redis)
            try:
                with app.app_context():
                    return command(app, *args, **kwargs)
            finally:
                # Close pooled connections now, not whenever the garbage collector gets to them.
                app.extensions["db"].dispose()
                app.extensions["redis"].close()

        return run  # type: ignore[return-value]

    return decorate(func) if func is not None else decorate

"""Settings read from the environment, one explicit line per variable.

Every setting has a documented default (see the README's table) so that a new
user can run the gateway with nothing set. A setting that is present but wrong
raises ``ConfigError`` with one sentence a person can act on.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class ConfigError(Exception):
    """A setting is missing or invalid; the message is one readable sentence."""


ENVIRONMENTS = ("development", "production", "testing")


def _int(environ: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}.") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}.")
    return value


def env_number(environ: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    """The number ``name`` holds (``default`` when unset), or a ConfigError saying what's wrong."""
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}.") from None
    if not value >= minimum:  # NaN fails too
        raise ConfigError(f"{name} must be at least {minimum:g}, not {raw}.")
    return value


def _choice(environ: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    raw = environ.get(name) or default
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {raw!r}.")
    return raw


def _bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}.")


def _timezone(environ: Mapping[str, str], name: str, default: str) -> str:
    raw = environ.get(name) or default
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{name} must be a time zone such as Europe/Rome, not {raw!r}.") from None
    return raw


def normalize_database_url(url: str) -> str:
    """Return a SQLAlchemy URL, choosing psycopg 3 for plain ``postgresql://`` URLs."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"DATABASE_URL is not a database URL: {url!r} "
            "(expected sqlite:///path or postgresql://user@host/db)."
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if not parsed.drivername.startswith(("sqlite", "postgresql")):
        raise ConfigError(
            f"DATABASE_URL uses {parsed.drivername!r}; the gateway supports sqlite and postgresql."
        )
    return parsed.render_as_string(hide_password=False)


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        parts = urlsplit(url)
        if parts.password:
            return url.replace(parts.password, "***")
        return url


def _redis_url(environ: Mapping[str, str]) -> str | None:
    raw = environ.get("REDIS_URL") or None
    if raw is None:
        return None
    scheme = urlsplit(raw).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(
            f"REDIS_URL must start with redis://, rediss:// or unix://, not {redact_url(raw)!r}."
        )
    return raw


def _site_url(environ: Mapping[str, str]) -> str | None:
    raw = (environ.get("GATEWAY_SITE_URL") or "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"GATEWAY_SITE_URL must be an http(s) URL, not {raw!r}.")
    return raw


def _secret_key(environ: Mapping[str, str], env: str, data_dir: Path) -> str:
    """Use SECRET_KEY, or in development a random key kept in the data directory."""
    raw = environ.get("SECRET_KEY")
    if raw:
        if len(raw) < 32:
            raise ConfigError("SECRET_KEY must be at least 32 characters long.")
        return raw
    if env == "production":
        raise ConfigError("SECRET_KEY must be set when GATEWAY_ENV is production.")
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # Created private from the start: the key signs sessions and CSRF tokens.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def _encryption_keys(environ: Mapping[str, str]) -> list[bytes]:
    raw = environ.get("GATEWAY_ENCRYPTION_KEYS", "").strip()
    if not raw:
        return []
    from cryptography.fernet import Fernet  # only needed when keys are set

    keys = [k.strip().encode() for k in raw.split(",") if k.strip()]
    for index, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise ConfigError(
                f"GATEWAY_ENCRYPTION_KEYS entry {index} is not a Fernet key "
                "(32 url-safe base64-encoded bytes)."
            ) from None
    return keys


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Read every setting from ``environ`` (default: the process environment).

    ``overrides`` (an app's explicit config) win over the environment and are
    validated the same way when they are strings named like the variables.
    """
    environ = dict(os.environ if environ is None else environ)
    overrides = dict(overrides or {})
    environ.update({k: v for k, v in overrides.items() if isinstance(v, str)})
    env = environ.get("GATEWAY_ENV", "development")
    if env not in ENVIRONMENTS:
        raise ConfigError(f"GATEWAY_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}.")
    data_dir = Path(environ.get("GATEWAY_DATA_DIR", "var")).resolve()
    default_db = f"sqlite:///{data_dir / 'gateway.db'}"
    base_url = environ.get("GATEWAY_BASE_URL", "http://127.0.0.1:5000").rstrip("/")
    if urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).netloc:
        raise ConfigError(f"GATEWAY_BASE_URL must be an http(s) URL, not {base_url!r}.")
    log_level = environ.get("LOG_LEVEL", "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {log_level!r}.")
    settings: dict[str, Any] = {
        "GATEWAY_ENV": env,
        "GATEWAY_DATA_DIR": str(data_dir),
        "DATABASE_URL": normalize_database_url(environ.get("DATABASE_URL", default_db)),
        "REDIS_URL": _redis_url(environ),
        "SECRET_KEY": _secret_key(environ, env, data_dir),
        "GATEWAY_BASE_URL": base_url,
        "GATEWAY_SITE_URL": _site_url(environ),
        "LOG_LEVEL": log_level,
        "QUEUE_NAME": environ.get("GATEWAY_QUEUE", "gateway"),
        "WEB_CONCURRENCY": _int(environ, "WEB_CONCURRENCY", 2, minimum=1),
        "MAX_CONTENT_LENGTH": _int(environ, "GATEWAY_MAX_BODY_BYTES", 256 * 1024, minimum=1024),
        "CALLBACK_MAX_BYTES": _int(environ, "CALLBACK_MAX_BYTES", 64 * 1024, minimum=1024),
        "CALLBACK_MAX_ATTEMPTS": _int(environ, "CALLBACK_MAX_ATTEMPTS", 8, minimum=1),
        "CALLBACK_BACKOFF_BASE_SECONDS": env_number(
            environ, "CALLBACK_BACKOFF_BASE_SECONDS", 30.0, 0.0
        ),
        "CALLBACK_BACKOFF_CAP_SECONDS": env_number(
            environ, "CALLBACK_BACKOFF_CAP_SECONDS", 3600.0, 0.0
        ),
        "ENCRYPTION_KEYS": _encryption_keys(environ),
        "LEDGER_DEFAULT_CREDIT_LIMIT_MINUTES": -_int(environ, "LEDGER_CREDIT_LIMIT_MINUTES", 600),
        "SYNC_MAX_ATTEMPTS": _int(environ, "SYNC_MAX_ATTEMPTS", 8, minimum=1),
        "SYNC_BACKOFF_BASE_SECONDS": env_number(environ, "SYNC_BACKOFF_BASE_SECONDS", 2.0, 0.01),
        "SYNC_BACKOFF_CAP_SECONDS": env_number(environ, "SYNC_BACKOFF_CAP_SECONDS", 600.0, 0.01),
        # Webhook receivers get a longer budget than partners: about five hours of backoff
        # (full jitter, an hour at most between tries) before an event is a dead letter.
        "WEBHOOK_MAX_ATTEMPTS": _int(environ, "WEBHOOK_MAX_ATTEMPTS", 20, minimum=1),
        "WEBHOOK_BACKOFF_CAP_SECONDS": env_number(
            environ, "WEBHOOK_BACKOFF_CAP_SECONDS", 3600.0, 0.01
        ),
        "WEBHOOK_TIMEOUT_SECONDS": env_number(environ, "WEBHOOK_TIMEOUT_SECONDS", 10.0, 0.1),
        "WEBHOOK_ROTATION_GRACE_SECONDS": _int(
            environ, "WEBHOOK_ROTATION_GRACE_SECONDS", 24 * 3600, minimum=0
        ),
        "RECONCILE_INTERVAL_SECONDS": _int(environ, "RECONCILE_INTERVAL_SECONDS", 900, minimum=10),
        "SYNC_SWEEP_INTERVAL_SECONDS": _int(environ, "SYNC_SWEEP_INTERVAL_SECONDS", 10, minimum=1),
        "CALLBACK_SWEEP_INTERVAL_SECONDS": _int(
            environ, "CALLBACK_SWEEP_INTERVAL_SECONDS", 60, minimum=1
        ),
        "SYNC_CIRCUIT_THRESHOLD": _int(environ, "SYNC_CIRCUIT_THRESHOLD", 5, minimum=1),
        "SYNC_CIRCUIT_COOLDOWN_SECONDS": _int(
            environ, "SYNC_CIRCUIT_COOLDOWN_SECONDS", 30, minimum=1
        ),
        "SYNC_LEASE_SECONDS": _int(environ, "SYNC_LEASE_SECONDS", 20, minimum=5),
        "OAUTH_REFRESH_FAMILY_MAX_SECONDS": _int(
            environ, "OAUTH_REFRESH_FAMILY_MAX_SECONDS", 30 * 24 * 3600, minimum=60
        ),
        "SESSION_COOKIE_SECURE": _bool(environ, "SESSION_COOKIE_SECURE", env == "production"),
        # Flask's own defaults hold these keys already (SameSite unset): they are set here.
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "GATEWAY_TRUSTED_PROXIES": _int(environ, "GATEWAY_TRUSTED_PROXIES", 0),
        "LINK_REAUTH_MAX_AGE_SECONDS": _int(
            environ, "LINK_REAUTH_MAX_AGE_SECONDS", 600, minimum=60
        ),
        "SESSION_IDLE_MINUTES": _int(environ, "SESSION_IDLE_MINUTES", 30, minimum=1),
        "SESSION_ABSOLUTE_HOURS": _int(environ, "SESSION_ABSOLUTE_HOURS", 12, minimum=1),
        "LOGIN_RATE_LIMIT_PER_ACCOUNT": _int(environ, "LOGIN_RATE_LIMIT_PER_ACCOUNT", 5, minimum=1),
        "LOGIN_RATE_LIMIT_PER_IP": _int(environ, "LOGIN_RATE_LIMIT_PER_IP", 30, minimum=1),
        "LOGIN_RATE_LIMIT_WINDOW_SECONDS": _int(
            environ, "LOGIN_RATE_LIMIT_WINDOW_SECONDS", 900, minimum=1
        ),
        "LOG_FORMAT": _choice(
            environ, "LOG_FORMAT", ("json", "text"), "json" if env == "production" else "text"
        ),
        "METRICS_TOKEN": environ.get("METRICS_TOKEN") or None,
        "MAIL_URL": environ.get("MAIL_URL") or None,
        "MAIL_FROM": environ.get("MAIL_FROM", "Milano Sei l'Altro <noreply@localhost>"),
        "MEMBERS_TIMEZONE": _timezone(environ, "MEMBERS_TIMEZONE", "Europe/Rome"),
    }
    overrides.pop("DATABASE_URL", None)  # already read, normalized, from environ
    settings.update(overrides)
    # Flask's cookie (locale, CSRF token, the login's id) lasts no longer than a login may.
    settings["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=settings["SESSION_ABSOLUTE_HOURS"])
    return settings

"""The sandbox's settings, one explicit line per environment variable.

A development stand-in for a partner timebank: its default client secret is public on purpose,
and its control endpoints (``/_sandbox/...``) have no authentication. Keep it on loopback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.config import ConfigError, env_number
from gateway_sandbox.faults import Faults

__all__ = ["DEFAULT_CLIENT_SECRET", "LOOPBACK_HOSTS", "load_sandbox_settings"]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# Public on purpose: the sandbox is a development stand-in, never a real platform.
DEFAULT_CLIENT_SECRET = "sandbox-secret"  # noqa: S105


def _hosts(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = environ.get(name)
    if not raw:
        return LOOPBACK_HOSTS
    return tuple(h.strip().lower() for h in raw.split(",") if h.strip())


def load_sandbox_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Every sandbox setting from ``environ`` (default: the process's), ``overrides`` on top."""
    environ = dict(os.environ if environ is None else environ)
    overrides = dict(overrides or {})
    environ.update({k: v for k, v in overrides.items() if isinstance(v, str)})
    default_dir = Path(environ.get("GATEWAY_DATA_DIR", "var")) / "sandbox"
    settings: dict[str, Any] = {
        "SANDBOX_DATA_DIR": str(Path(environ.get("SANDBOX_DATA_DIR") or default_dir).resolve()),
        "SANDBOX_CLIENT_ID": environ.get("SANDBOX_CLIENT_ID", "gateway"),
        "SANDBOX_CLIENT_SECRET": environ.get("SANDBOX_CLIENT_SECRET", DEFAULT_CLIENT_SECRET),
        "SANDBOX_CLEARING_WALLET_ID": environ.get("SANDBOX_CLEARING_WALLET_ID", "w_clearing"),
        "SANDBOX_TOKEN_TTL_SECONDS": int(env_number(environ, "SANDBOX_TOKEN_TTL_SECONDS", 3600, 1)),
        "SANDBOX_CREDIT_LIMIT_MINUTES": int(
            env_number(environ, "SANDBOX_CREDIT_LIMIT_MINUTES", 600, 0)
        ),
        "SANDBOX_WEBHOOK_HOSTS": _hosts(environ, "SANDBOX_WEBHOOK_HOSTS"),
        "SANDBOX_REDIRECT_HOSTS": _hosts(environ, "SANDBOX_REDIRECT_HOSTS"),
        "SANDBOX_WEBHOOK_MAX_ATTEMPTS": int(
            env_number(environ, "SANDBOX_WEBHOOK_MAX_ATTEMPTS", 8, 1)
        ),
        # The contract's senders retry for 3 days; the sandbox compresses that schedule.
        "SANDBOX_WEBHOOK_RETRY_BASE_SECONDS": env_number(
            environ, "SANDBOX_WEBHOOK_RETRY_BASE_SECONDS", 1.0, 0.0
        ),
        "SANDBOX_WEBHOOK_MAX_BACKOFF_SECONDS": env_number(
            environ, "SANDBOX_WEBHOOK_MAX_BACKOFF_SECONDS", 300.0, 0.0
        ),
        "SANDBOX_WEBHOOK_POLL_SECONDS": env_number(
            environ, "SANDBOX_WEBHOOK_POLL_SECONDS", 0.2, 0.01
        ),
        "SANDBOX_WEBHOOK_TIMEOUT_SECONDS": env_number(
            environ, "SANDBOX_WEBHOOK_TIMEOUT_SECONDS", 5.0, 0.1
        ),
        "SANDBOX_FAULTS": Faults.from_environ(environ),
    }
    settings.update(overrides)
    if not settings["SANDBOX_CLIENT_ID"] or not settings["SANDBOX_CLIENT_SECRET"]:
        raise ConfigError("SANDBOX_CLIENT_ID and SANDBOX_CLIENT_SECRET must not be empty.")
    return settings

"""The gateway's side of the connector boundary: building a platform's connector.

Connectors are cached per process and platform version, so token caches and pooled HTTP
sessions survive between jobs; changing a platform (credentials, URL) builds a new one.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from connectors.errors import (
    ConflictError,
    ConnectorError,
    PermanentError,
    RateLimitedError,
    RetryableError,
)
from connectors.interface import Connector, PlatformConfig
from connectors.registry import get_connector_class
from gateway.auth.minting import token_source_for
from gateway.federation.models import Platform
from gateway.sync.token_store import token_store_for

__all__ = [
    "ConflictError",
    "ConnectorError",
    "PermanentError",
    "RateLimitedError",
    "RetryableError",
    "connector_for",
    "platform_config",
]

_cache: dict[tuple[str, str], Connector] = {}
_lock = threading.Lock()


def platform_config(platform: Platform, token_scopes: Sequence[str] = ()) -> PlatformConfig:
    """The configuration a connector is built from, with the token source the gateway builds."""
    options = dict(platform.options or {})
    scopes = tuple(options.get("scopes") or token_scopes)
    return PlatformConfig(
        name=platform.name,
        base_url=platform.base_url,
        credentials=platform.credentials,
        options=options,
        token_source=token_source_for(options, platform.base_url, scopes),
        token_store=token_store_for(platform.id),
    )


def connector_for(platform: Platform) -> Connector:
    """The connector of ``platform`` (built once per process and platform version)."""
    key = (platform.id, platform.updated_at.isoformat())
    with _lock:
        connector = _cache.get(key)
        if connector is None:
            for stale in [k for k in _cache if k[0] == platform.id]:
                del _cache[stale]
            connector_class = get_connector_class(platform.connector)
            connector = connector_class(platform_config(platform, connector_class.token_scopes))
            _cache[key] = connector
        return connector

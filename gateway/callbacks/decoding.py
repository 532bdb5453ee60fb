"""Reading a verified callback, telling the partner's faults from ours.

A connector that decodes callbacks from the body alone (``CallbackDecoding``) is asked with the
platform's name, URL and options, never its credentials: a platform whose credentials are
missing or wrong still has its events checked and stored, since verifying them needs only the
webhook secret. Other connectors are built (``connector_for``) to parse; when building fails,
that is our misconfiguration, raised as ``OurFault`` so that the partner hears a 5xx and sends
the event again, never a 4xx that would make it drop the event.
"""

from __future__ import annotations

from collections.abc import Mapping

from connectors.errors import ConnectorError
from connectors.interface import CallbackDecoding, CallbackEvent, Connector, PlatformConfig
from connectors.registry import get_connector_class
from gateway.federation.models import Platform

__all__ = ["OurFault", "decode_event"]

# The hot path asks for the class of every event; the entry-point scan costs more than the event.
_classes: dict[str, type[Connector]] = {}


class OurFault(Exception):
    """The event could not be read because of the gateway's configuration, not the event."""


def _connector_class(key: str) -> type[Connector]:
    cls = _classes.get(key)
    if cls is None:
        try:
            cls = get_connector_class(key)
        except (LookupError, ImportError) as exc:
            raise OurFault(f"connector {key!r} is not available: {exc}") from exc
        _classes[key] = cls
    return cls


def decode_event(platform: Platform, headers: Mapping[str, str], body: bytes) -> CallbackEvent:
    """The event, checked against the platform's contract.

    Raises ``PermanentError`` when the event breaks the contract (the partner's fault),
    ``OurFault`` when the platform's configuration keeps us from reading it, and
    ``RetryableError`` when a connector that must read something back could not, for now.
    """
    cls = _connector_class(platform.connector)
    if issubclass(cls, CallbackDecoding):
        config = PlatformConfig(
            name=platform.name, base_url=platform.base_url, options=dict(platform.options or {})
        )
        return cls.decode_callback(config, headers, body)
    from gateway.sync.remote import connector_for

    try:
        connector = connector_for(platform)
    except (ConnectorError, ValueError, TypeError, KeyError) as exc:
        raise OurFault(f"the {platform.connector} connector cannot be built: {exc}") from exc
    return connector.parse_callback(headers, body)

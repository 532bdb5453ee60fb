"""Who the client is when the gateway runs behind reverse proxies.

``GATEWAY_TRUSTED_PROXIES`` says how many proxies stand in front of the gateway, each adding
itself to ``X-Forwarded-For`` (and setting ``X-Forwarded-Proto``, ``-Host``, ``-Port``).
werkzeug's ProxyFix then takes the client's address, scheme, host and port from the entries
those proxies wrote, counting from the right: entries a client wrote itself lie further left
and are never read. With 0, the default, the headers are ignored and the socket's peer is the
client. Past this point ``request.remote_addr`` is the client's address for every reader (the
rate limits, the logs), and ``is_local_request`` is the one check that trusts loopback.
"""

from __future__ import annotations

import ipaddress

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

__all__ = ["init_app", "is_local_request"]

# Headers that say a request was relayed; a relayed request is never a local one.
FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-Ip")


def is_local_request() -> bool:
    """Whether a client on this host spoke to the gateway directly, not through a proxy.

    A proxy on the same host connects from loopback for every client it relays, so a request
    carrying a forwarding header is not local, whatever address it arrived from or names.
    """
    if any(name in request.headers for name in FORWARDING_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


def init_app(app: Flask) -> None:
    """Read the client from the headers of the trusted proxies, if there are any."""
    hops = app.config.get("GATEWAY_TRUSTED_PROXIES", 0)
    if hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops
        )

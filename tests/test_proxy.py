"""Behind reverse proxies: whose address the rate limits count, and who is local for /metrics."""

from __future__ import annotations

import pytest
from flask import request

from gateway.config import ConfigError, load_settings
from tests.members.helpers import csrf

PROXY = "127.0.0.1"  # an ingress on the same host relays every client from loopback


def _client_app(make_app, hops: int):
    app = make_app(
        GATEWAY_TRUSTED_PROXIES=hops,
        LOGIN_RATE_LIMIT_PER_IP=2,
        LOGIN_RATE_LIMIT_PER_ACCOUNT=100,
    )

    @app.get("/_test/who")
    def who() -> dict:
        return {
            "addr": request.remote_addr,
            "scheme": request.scheme,
            "host": request.host,
        }

    return app


def _login_attempt(client, n: int, forwarded_for: str | None = None, peer: str = PROXY) -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    response = client.post(
        "/login",
        data={"email": f"nobody{n}@example.org", "password": "wrong", "csrf_token": csrf(client)},
        headers=headers,
        environ_base={"REMOTE_ADDR": peer},
    )
    return response.status_code


def test_without_trusted_proxies_forwarded_headers_are_ignored(make_app):
    app = _client_app(make_app, 0)
    client = app.test_client()
    who = client.get(
        "/_test/who",
        headers={
            "X-Forwarded-For": "203.0.113.9",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "evil.example",
        },
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
    ).json
    assert who == {"addr": "198.51.100.7", "scheme": "http", "host": "localhost"}
    # A client that writes a new X-Forwarded-For on every attempt still has one counter.
    statuses = [
        _login_attempt(client, n, forwarded_for=f"203.0.113.{n}", peer="198.51.100.7")
        for n in range(3)
    ]
    assert statuses == [401, 401, 429]


def test_with_one_trusted_proxy_each_client_has_its_own_counter(make_app):
    app = _client_app(make_app, 1)
    client = app.test_client()
    who = client.get(
        "/_test/who",
        headers={
            "X-Forwarded-For": "203.0.113.9",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "gateway.example.org",
            "X-Forwarded-Port": "443",
        },
    ).json
    assert who == {"addr": "203.0.113.9", "scheme": "https", "host": "gateway.example.org"}
    # Every member comes from the proxy's address, yet each is counted alone.
    assert [_login_attempt(client, n, "203.0.113.1") for n in range(3)] == [401, 401, 429]
    assert _login_attempt(client, 3, "203.0.113.2") == 401
    # What a client wrote before the proxy appended the real address is never read.
    spoofed = [_login_attempt(client, n, f"10.0.0.{n}, 203.0.113.1") for n in range(4, 6)]
    assert spoofed == [429, 429]


def test_two_trusted_proxies_read_the_second_entry_from_the_right(make_app):
    app = _client_app(make_app, 2)
    who = (
        app.test_client()
        .get("/_test/who", headers={"X-Forwarded-For": "10.9.9.9, 203.0.113.4, 10.0.0.2"})
        .json
    )
    assert who["addr"] == "203.0.113.4"


def test_metrics_trust_only_local_clients_that_came_directly(make_app):
    for hops in (0, 1):
        client = make_app(GATEWAY_TRUSTED_PROXIES=hops).test_client()
        assert client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200
        assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
        # Relayed by a proxy on this host: whoever the client is, it is not local.
        for forwarded in ("203.0.113.9", "127.0.0.1"):
            relayed = client.get(
                "/metrics",
                headers={"X-Forwarded-For": forwarded},
                environ_base={"REMOTE_ADDR": PROXY},
            )
            assert relayed.status_code == 403, (hops, forwarded)
        for header in ("Forwarded", "X-Real-Ip"):
            relayed = client.get(
                "/metrics", headers={header: "for=203.0.113.9"}, environ_base={"REMOTE_ADDR": PROXY}
            )
            assert relayed.status_code == 403, (hops, header)


@pytest.mark.parametrize("value", ["two", "-1", "1.5"])
def test_a_wrong_proxy_count_stops_the_gateway(value):
    with pytest.raises(ConfigError, match="GATEWAY_TRUSTED_PROXIES"):
        load_settings({"GATEWAY_TRUSTED_PROXIES": value, "SECRET_KEY": "x" * 32})


def test_the_proxy_count_defaults_to_none(tmp_path):
    settings = load_settings({"SECRET_KEY": "x" * 32, "GATEWAY_DATA_DIR": str(tmp_path)})
    assert settings["GATEWAY_TRUSTED_PROXIES"] == 0

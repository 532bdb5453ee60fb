"""Partner tokens shared between work horses in Redis: encrypted, expiring, dropped on 401."""

from __future__ import annotations

import itertools
import json
import logging

import pytest
import redis
from responses import matchers

from connectors.errors import AuthError
from connectors.timerepublik import TimeRepublikConnector
from connectors.timerepublik.client import PARTNER_SCOPES
from connectors.tokens import TokenKey
from gateway.crypto import cipher
from gateway.db import db
from gateway.federation.models import Platform
from gateway.sync import remote
from gateway.sync.drain import drain
from gateway.sync.remote import platform_config
from gateway.sync.token_store import PREFIX, RedisTokenStore, shared_lifetime
from tests.sync.conftest import BASE, consent, member_json

TOKEN_URL = f"{BASE}/oauth/token"
WALLET_URL = f"{BASE}/v1/wallets/w1"
REFUSED = {"title": "invalid token", "status": 401, "code": "invalid_token"}
WALLET = {
    "id": "w1",
    "member_id": "m1",
    "balance_minutes": 30,
    "updated_at": "2026-11-24T10:00:00Z",
}


def _work_horse(platform: Platform) -> TimeRepublikConnector:
    """A connector built as a fresh work horse builds it: nothing cached in the process."""
    return TimeRepublikConnector(platform_config(db.session.get(Platform, platform.id)))


def _token_answer(partner, token: str, expires_in: int | None = 3600) -> None:
    body = {"access_token": token, "token_type": "Bearer"}
    if expires_in is not None:
        body["expires_in"] = expires_in
    partner.replace("POST", TOKEN_URL, json=body)


def _token_requests(partner) -> int:
    return sum(1 for call in partner.calls if call.request.url == TOKEN_URL)


def _stored(redis_conn) -> list[bytes]:
    return list(redis_conn.scan_iter(f"{PREFIX}*"))


def test_two_work_horses_share_one_token_request(app, platform, partner, redis_conn):
    partner.get(WALLET_URL, json=WALLET)
    with app.app_context():
        first, second = _work_horse(platform), _work_horse(platform)
        assert first.get_balance("w1").minutes == 30
        assert second.get_balance("w1").minutes == 30
    assert _token_requests(partner) == 1
    assert (first.client.tokens.fetches, second.client.tokens.store_hits) == (1, 1)
    bearers = {
        c.request.headers["Authorization"] for c in partner.calls if c.request.url == WALLET_URL
    }
    assert bearers == {"Bearer partner-token"}


def test_drains_in_separate_work_horses_ask_for_one_token(app, platform, partner, monkeypatch):
    made = itertools.count(1)

    def created(request):
        external_id = json.loads(request.body)["external_id"]
        return 201, {}, json.dumps(member_json(external_id, next(made)))

    partner.add_callback("POST", f"{BASE}/v1/members", callback=created)
    with app.app_context():
        for _ in range(3):
            consent(platform)
            # A work horse is a fork of a worker that built no connector: start from none.
            monkeypatch.setattr(remote, "_cache", {})
            drain(platform.id)
    assert len([c for c in partner.calls if c.request.url == f"{BASE}/v1/members"]) == 3
    assert _token_requests(partner) == 1


def test_redis_forgets_a_token_before_the_partner_does(app, platform, partner, redis_conn):
    partner.get(WALLET_URL, json=WALLET)
    _token_answer(partner, "short-lived", expires_in=120)
    with app.app_context():
        _work_horse(platform).get_balance("w1")
    [key] = _stored(redis_conn)
    # 120 s less 10 % (less than a minute): gone from Redis 12 s before the partner refuses it.
    assert 107_000 < redis_conn.pttl(key) <= 108_000


def test_an_hour_long_token_is_kept_a_minute_less(app, platform, partner, redis_conn):
    partner.get(WALLET_URL, json=WALLET)
    with app.app_context():
        _work_horse(platform).get_balance("w1")
    [key] = _stored(redis_conn)
    assert 3_539_000 < redis_conn.pttl(key) <= 3_540_000


@pytest.mark.parametrize("expires_in", [None, 5])
def test_a_token_without_a_useful_lifetime_is_not_shared(
    app, platform, partner, redis_conn, expires_in
):
    partner.get(WALLET_URL, json=WALLET)
    _token_answer(partner, "unshared", expires_in=expires_in)
    with app.app_context():
        _work_horse(platform).get_balance("w1")
        _work_horse(platform).get_balance("w1")
    assert _stored(redis_conn) == []
    assert _token_requests(partner) == 2


def test_the_value_in_redis_is_no_usable_token(app, platform, partner, redis_conn):
    partner.get(WALLET_URL, json=WALLET)
    with app.app_context():
        _work_horse(platform).get_balance("w1")
    [key] = _stored(redis_conn)
    value = redis_conn.get(key)
    assert b"partner-token" not in value
    for secret in (b"gateway", b"partner-secret", b"partner-token"):
        # Past the prefix, the key is a hash: no client id, no secret, no token.
        assert secret not in key.removeprefix(PREFIX.encode())
    with app.app_context():
        assert b"partner-token" in cipher(app.config).decrypt(value)


def test_a_refused_token_is_discarded_and_refetched_once(app, platform, partner, redis_conn):
    partner.get(WALLET_URL, json=WALLET)
    with app.app_context():
        _work_horse(platform).get_balance("w1")  # shares partner-token
        # The partner revokes it: it now refuses partner-token and issues fresh-token.
        partner.remove("GET", WALLET_URL)
        for token, answer in [
            ("partner-token", {"status": 401, "json": REFUSED}),
            ("fresh-token", {"json": WALLET}),
        ]:
            bearer = matchers.header_matcher({"Authorization": f"Bearer {token}"})
            partner.add("GET", WALLET_URL, match=[bearer], **answer)
        _token_answer(partner, "fresh-token")
        calls_before = len(partner.calls)
        horse = _work_horse(platform)
        assert horse.get_balance("w1").minutes == 30
        tokens = horse.client.tokens
        assert (tokens.store_hits, tokens.fetches) == (1, 1)
        after = [c.request for c in partner.calls[calls_before:]]
        assert [r.url for r in after] == [WALLET_URL, TOKEN_URL, WALLET_URL]
        # The next work horse takes the fresh token from Redis, asking the partner for none.
        later = _work_horse(platform)
        later.get_balance("w1")
        assert later.client.tokens.fetches == 0
    assert partner.calls[-1].request.headers["Authorization"] == "Bearer fresh-token"


def test_a_token_refused_twice_is_an_auth_error_as_before(app, platform, partner):
    partner.get(WALLET_URL, status=401, json={"title": "no", "status": 401})
    with app.app_context(), pytest.raises(AuthError):
        _work_horse(platform).get_balance("w1")
    assert _token_requests(partner) == 2  # one refresh, as without the store


def test_unreachable_redis_still_delivers_with_a_fresh_token(
    app, platform, partner, unused_port, caplog
):
    partner.get(WALLET_URL, json=WALLET)
    dead = redis.Redis.from_url(f"redis://127.0.0.1:{unused_port}/0", socket_connect_timeout=1)
    app.extensions["redis"], working = dead, app.extensions["redis"]
    try:
        with app.app_context(), caplog.at_level(logging.WARNING, "gateway.sync.token_store"):
            horse = _work_horse(platform)
            assert horse.get_balance("w1").minutes == 30
            horse.client.tokens.invalidate()
            assert horse.get_balance("w1").minutes == 30
    finally:
        app.extensions["redis"] = working
        dead.close()
    assert horse.client.tokens.fetches == 2
    warnings = [r for r in caplog.records if r.name == "gateway.sync.token_store"]
    assert len(warnings) == 1
    assert "partner-token" not in caplog.text


def test_a_token_copied_to_another_platforms_key_is_refused(app, redis_conn):
    with app.app_context():
        keys = cipher(app.config)
    key = TokenKey(TOKEN_URL, "gateway", PARTNER_SCOPES)
    ours, theirs = RedisTokenStore(redis_conn, keys, "p1"), RedisTokenStore(redis_conn, keys, "p2")
    ours.put(key, "p1-token", 3600)
    redis_conn.set(theirs.redis_key(key), redis_conn.get(ours.redis_key(key)))
    assert theirs.get(key) is None
    assert ours.get(key).access_token == "p1-token"


def test_a_token_encrypted_with_a_retired_key_is_a_miss(app, redis_conn):
    with app.app_context():
        keys = cipher(app.config)
    other = cipher({"SECRET_KEY": "another-secret-key-that-is-long-enough-000"})
    key = TokenKey(TOKEN_URL, "gateway", ())
    RedisTokenStore(redis_conn, other, "p1").put(key, "old", 3600)
    assert RedisTokenStore(redis_conn, keys, "p1").get(key) is None


def test_a_read_token_has_its_remaining_life(redis_conn):
    now = [1000.0]
    keys = cipher({"SECRET_KEY": "a-secret-key-that-is-long-enough-0123456789"})
    store = RedisTokenStore(redis_conn, keys, "p1", clock=lambda: now[0])
    key = TokenKey(TOKEN_URL, "gateway", ())
    store.put(key, "t", 600)
    now[0] += 100
    assert store.get(key).expires_in == pytest.approx(500)


@pytest.mark.parametrize(
    ("expires_in", "kept"), [(3600, 3540), (600, 540), (120, 108), (30, 27), (10, None), (0, None)]
)
def test_shared_lifetime(expires_in, kept):
    assert shared_lifetime(expires_in) == (None if kept is None else pytest.approx(kept))

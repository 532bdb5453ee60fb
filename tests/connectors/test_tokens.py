"""Client-credentials tokens: cached until shortly before expiry, refreshed on demand."""

from __future__ import annotations

import pytest

from connectors.errors import AuthError, RetryableError
from connectors.http import HttpClient
from connectors.tokens import ClientCredentialsTokenSource, StoredToken, TokenKey

TOKEN_URL = "https://auth.test/oauth/token"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _source(clock: Clock, scopes=("a", "b")) -> ClientCredentialsTokenSource:
    return ClientCredentialsTokenSource(
        HttpClient("https://auth.test"), TOKEN_URL, "cid", "csecret", scopes, clock=clock
    )


def _answer(mock, token: str, expires_in: int | None = 3600, **extra) -> None:
    body = {"access_token": token, "token_type": "bearer", **extra}
    if expires_in is not None:
        body["expires_in"] = expires_in
    mock.post(TOKEN_URL, json=body)


def test_token_request_is_client_credentials_with_basic_auth(mock):
    _answer(mock, "t1")
    assert _source(Clock()).token() == "t1"
    request = mock.calls[0].request
    assert request.headers["Authorization"].startswith("Basic ")
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.body == "grant_type=client_credentials&scope=a+b"


def test_token_is_cached_until_shortly_before_expiry(mock):
    clock = Clock()
    source = _source(clock)
    _answer(mock, "t1", expires_in=3600)
    assert source.token() == "t1"
    clock.now += 3600 - 31  # still more than the 30 s leeway left
    assert source.token() == "t1"
    assert source.fetches == 1
    mock.replace("POST", TOKEN_URL, json={"access_token": "t2", "expires_in": 3600})
    clock.now += 2  # within the leeway: renewed before it can expire in flight
    assert source.token() == "t2"
    assert source.fetches == 2


def test_short_lived_tokens_renew_at_half_life(mock):
    clock = Clock()
    source = _source(clock)
    _answer(mock, "t1", expires_in=10)
    source.token()
    clock.now += 4.9
    source.token()
    assert source.fetches == 1
    clock.now += 0.2
    source.token()
    assert source.fetches == 2


def test_missing_expires_in_gets_a_default_lifetime(mock):
    clock = Clock()
    source = _source(clock)
    _answer(mock, "t1", expires_in=None)
    source.token()
    clock.now += 200
    source.token()
    assert source.fetches == 1


def test_invalidate_forces_a_new_token(mock):
    source = _source(Clock())
    _answer(mock, "t1")
    source.token()
    source.invalidate()
    source.token()
    assert source.fetches == 2


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (401, {"error": "invalid_client"}, "invalid_client"),
        (400, {"error": "invalid_scope"}, "invalid_scope"),
        (400, {"type": "x", "title": "t", "status": 400, "code": "invalid_grant"}, "invalid_grant"),
    ],
)
def test_a_refused_token_request_is_an_auth_error(mock, status, body, code):
    mock.post(TOKEN_URL, status=status, json=body)
    with pytest.raises(AuthError) as caught:
        _source(Clock()).token()
    assert caught.value.code == code
    assert "csecret" not in str(caught.value)


def test_an_unavailable_token_endpoint_is_retryable(mock):
    mock.post(TOKEN_URL, status=503)
    with pytest.raises(RetryableError):
        _source(Clock()).token()


@pytest.mark.parametrize(
    "body",
    [{"token_type": "bearer"}, {"access_token": "t", "token_type": "mac"}, {"access_token": ""}],
)
def test_a_useless_token_answer_is_an_auth_error(mock, body):
    mock.post(TOKEN_URL, json=body)
    with pytest.raises(AuthError):
        _source(Clock()).token()


def test_credentials_are_required():
    with pytest.raises(Exception, match="client_id and client_secret"):
        ClientCredentialsTokenSource(HttpClient("https://auth.test"), TOKEN_URL, "cid", "")


class DictStore:
    """A ``TokenStore`` in a dict, as a process-shared one behaves (no expiry of its own)."""

    def __init__(self) -> None:
        self.tokens: dict[TokenKey, StoredToken] = {}
        self.discarded = 0

    def get(self, key: TokenKey) -> StoredToken | None:
        return self.tokens.get(key)

    def put(self, key: TokenKey, access_token: str, expires_in: float) -> None:
        self.tokens[key] = StoredToken(access_token, expires_in)

    def discard(self, key: TokenKey) -> None:
        self.discarded += 1
        self.tokens.pop(key, None)


def _stored_source(clock: Clock, store: DictStore, scopes=("a", "b")):
    return ClientCredentialsTokenSource(
        HttpClient("https://auth.test"),
        TOKEN_URL,
        "cid",
        "csecret",
        scopes,
        store=store,
        clock=clock,
    )


def test_a_fetched_token_is_put_in_the_store_under_no_secret(mock):
    store = DictStore()
    _answer(mock, "t1", expires_in=600)
    _stored_source(Clock(), store, scopes=("b", "a")).token()
    assert store.tokens == {TokenKey(TOKEN_URL, "cid", ("a", "b")): StoredToken("t1", 600.0)}


def test_a_token_in_the_store_is_used_without_a_request(mock):
    store, clock = DictStore(), Clock()
    _answer(mock, "t1", expires_in=600)
    _stored_source(clock, store).token()
    other = _stored_source(clock, store, scopes=("b", "a"))  # another process, same client
    assert other.token() == "t1"
    assert (other.fetches, other.store_hits, len(mock.calls)) == (0, 1, 1)


def test_a_stored_token_renews_by_its_remaining_life(mock):
    store, clock = DictStore(), Clock()
    store.tokens[TokenKey(TOKEN_URL, "cid", ("a", "b"))] = StoredToken("old", 100.0)
    source = _stored_source(clock, store)
    assert source.token() == "old"
    _answer(mock, "new", expires_in=600)
    clock.now += 100 - 31
    assert source.token() == "old"
    store.tokens.clear()  # the store let it go shortly before expiry, as Redis does
    clock.now += 2
    assert source.token() == "new"


def test_a_token_without_expires_in_is_not_shared(mock):
    store = DictStore()
    _answer(mock, "t1", expires_in=None)
    _stored_source(Clock(), store).token()
    assert store.tokens == {}


def test_invalidate_discards_from_the_store_and_never_takes_the_refused_token_back(mock):
    store, clock = DictStore(), Clock()
    _answer(mock, "t1")
    source = _stored_source(clock, store)
    source.token()
    source.invalidate()
    assert store.discarded == 1
    # Another process put the refused token back before it learned of the refusal.
    store.tokens[TokenKey(TOKEN_URL, "cid", ("a", "b"))] = StoredToken("t1", 3000.0)
    mock.replace("POST", TOKEN_URL, json={"access_token": "t2", "expires_in": 3600})
    assert source.token() == "t2"
    assert source.fetches == 2

"""JWTs the gateway mints for platforms: verified by its own JWKS, minted from any thread."""

from __future__ import annotations

import threading

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from connectors.errors import PermanentError
from gateway.auth.minting import MintedTokenSource, token_source_for
from gateway.db import db
from gateway.members.models import Member

AUDIENCE = "https://accounting.komunitin.test"


def _claims(client, token: str) -> dict:
    keyset = KeySet.import_key_set(client.get("/oauth/jwks").json)
    return jwt.decode(token, keyset, algorithms=["RS256"]).claims


def _in_a_thread(source: MintedTokenSource) -> str:
    """``source.token()`` from a thread with no application context, as a pool thread calls it."""
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(_call(source)))
    thread.start()
    thread.join()
    if isinstance(result[0], BaseException):
        raise result[0]
    return str(result[0])


def _call(source: MintedTokenSource) -> object:
    try:
        return source.token()
    except BaseException as exc:  # noqa: BLE001 - handed back to the test's thread
        return exc


def test_a_token_minted_in_a_pool_thread_verifies_with_the_published_keys(app, client):
    with app.app_context():
        source = token_source_for({"token_source": "gateway"}, AUDIENCE, ["komunitin_accounting"])
    assert source is not None
    token = _in_a_thread(source)
    assert _in_a_thread(source) == token  # reused while fresh
    assert source.minted == 1
    claims = _claims(client, token)
    assert claims["scope"] == "komunitin_accounting"
    assert claims["aud"] == AUDIENCE
    assert claims["iss"] == app.config["GATEWAY_BASE_URL"]
    assert claims["exp"] - claims["iat"] == 300


def test_a_token_minted_inside_a_caller_context_leaves_its_session_alone(app, client):
    client.get("/oauth/jwks")  # the signing key exists, as it does once the gateway has run
    with app.app_context():
        source = MintedTokenSource(app, AUDIENCE, "komunitin_accounting")
        member = Member(email="pending@example.org", display_name="Pending")
        db.session.add(member)  # the caller's transaction, not committed
        token = source.token()
        assert member in db.session  # the same session: no context of its own was torn down
        db.session.rollback()
        assert db.session.scalar(select(Member).filter_by(email=member.email)) is None
    assert _claims(client, token)["aud"] == AUDIENCE


def test_a_refused_token_is_replaced_and_an_old_one_renewed(app, client):
    now = [1_000_000.0]
    source = MintedTokenSource(app, AUDIENCE, "s", clock=lambda: now[0])
    first = _in_a_thread(source)
    source.invalidate()
    second = _in_a_thread(source)
    assert second != first
    now[0] += 300 - 60  # a minute before it expires
    assert _in_a_thread(source) != second
    assert source.minted == 3


def test_no_token_source_unless_asked_and_only_known_kinds(app):
    with app.app_context():
        assert token_source_for({}, AUDIENCE, ["s"]) is None
        with pytest.raises(PermanentError) as caught:
            token_source_for({"token_source": "gateway.auth.minting:komunitin_token"}, AUDIENCE, [])
    assert caught.value.code == "misconfigured"

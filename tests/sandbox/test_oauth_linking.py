"""Linking an existing sandbox account: consent page, code + PKCE, then /v1/me."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from connectors.errors import PermanentError
from connectors.interface import TransferData

REDIRECT = "http://127.0.0.1:5000/platforms/sandbox/linked"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return verifier, challenge.decode()


def authorize_params(challenge: str, **extra: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": "gateway",
        "redirect_uri": REDIRECT,
        "scope": "profile",
        "state": "st4te",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(extra)
    return params


def consent(sandbox, challenge: str, email: str, decision: str = "allow", **extra: str):
    """What a member's browser does: open the page, then submit the form."""
    authorize = tr_settings(sandbox).authorize_url
    page = requests.get(authorize, params=authorize_params(challenge, **extra), timeout=5)
    assert page.status_code == 200
    assert "Link your timebank account" in page.text
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    form.update({"email": email, "decision": decision})
    return requests.post(authorize, data=form, allow_redirects=False, timeout=5)


def tr_settings(sandbox):
    connector = sandbox.connector()
    settings = connector.oauth_settings()
    connector.close()
    return settings


def code_from(answer) -> dict[str, list[str]]:
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return parse_qs(urlsplit(location).query)


def test_a_member_links_an_existing_account(sandbox, tr):
    native = sandbox.control("POST", "seed")["members"][0]
    verifier, challenge = pkce()
    query = code_from(consent(sandbox, challenge, native["email"].upper()))
    assert query["state"] == ["st4te"]
    linked = tr.link_member(query["code"][0], REDIRECT, verifier)
    assert (linked.id, linked.wallet_id) == (native["id"], native["wallet_id"])
    # Linked: the partner may now move hours to that wallet and read it.
    data = TransferData(sandbox.clearing_wallet(), linked.wallet_id, 60, "Benvenuta", "gw-txn-1")
    tr.create_transfer(data, "push-1")
    # Seeded: paid 60, received 30; then our 60.
    assert tr.get_balance(linked.wallet_id).minutes == -60 + 30 + 60


def test_a_code_works_once(sandbox, tr):
    native = sandbox.control("POST", "seed")["members"][1]
    verifier, challenge = pkce()
    code = code_from(consent(sandbox, challenge, native["email"]))["code"][0]
    tr.link_member(code, REDIRECT, verifier)
    with pytest.raises(PermanentError) as caught:
        tr.link_member(code, REDIRECT, verifier)
    assert caught.value.code == "invalid_grant"


def test_the_verifier_must_match(sandbox, tr):
    native = sandbox.control("POST", "seed")["members"][1]
    _, challenge = pkce()
    code = code_from(consent(sandbox, challenge, native["email"]))["code"][0]
    with pytest.raises(PermanentError) as caught:
        tr.link_member(code, REDIRECT, pkce()[0])
    assert caught.value.code == "invalid_grant"


def test_the_redirect_uri_must_match(sandbox, tr):
    native = sandbox.control("POST", "seed")["members"][1]
    verifier, challenge = pkce()
    code = code_from(consent(sandbox, challenge, native["email"]))["code"][0]
    with pytest.raises(PermanentError):
        tr.link_member(code, "http://127.0.0.1:5000/elsewhere", verifier)


def test_deny_returns_access_denied(sandbox):
    _, challenge = pkce()
    query = code_from(consent(sandbox, challenge, "", decision="deny"))
    assert query == {"error": ["access_denied"], "state": ["st4te"]}


def test_an_unknown_email_stays_on_the_page(sandbox):
    _, challenge = pkce()
    answer = consent(sandbox, challenge, "nobody@example.org")
    assert answer.status_code == 200
    assert "No active account" in answer.text


@pytest.mark.parametrize(
    "bad",
    [
        {"redirect_uri": "https://evil.example/cb"},
        {"redirect_uri": "javascript:alert(1)"},
        {"client_id": "someone"},
    ],
)
def test_untrusted_redirects_get_a_page_not_a_redirect(sandbox, bad):
    _, challenge = pkce()
    answer = requests.get(
        tr_settings(sandbox).authorize_url,
        params=authorize_params(challenge, **bad),
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 400
    assert "Location" not in answer.headers


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": ""}, "invalid_request"),
        ({"scope": "transfers:write"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ],
)
def test_bad_requests_go_back_with_an_error(sandbox, bad, error):
    _, challenge = pkce()
    answer = requests.get(
        tr_settings(sandbox).authorize_url,
        params=authorize_params(challenge, **bad),
        allow_redirects=False,
        timeout=5,
    )
    assert code_from(answer)["error"] == [error]


def test_member_tokens_refresh_with_rotation(sandbox):
    native = sandbox.control("POST", "seed")["members"][2]
    verifier, challenge = pkce()
    code = code_from(consent(sandbox, challenge, native["email"]))["code"][0]
    token_url = f"{sandbox.url}/oauth/token"
    auth = ("gateway", "test-client-secret")
    first = requests.post(
        token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=auth,
        timeout=5,
    ).json()
    me = requests.get(
        f"{sandbox.url}/v1/me",
        headers={"Authorization": f"Bearer {first['access_token']}"},
        timeout=5,
    )
    assert me.json()["id"] == native["id"]
    refreshed = requests.post(
        token_url,
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=auth,
        timeout=5,
    )
    assert refreshed.status_code == 200
    reused = requests.post(
        token_url,
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=auth,
        timeout=5,
    )
    assert reused.status_code == 400
    assert reused.json()["code"] == "invalid_grant"


def test_me_needs_a_member_token(sandbox, tr):
    token = tr.client.tokens.token()
    answer = requests.get(
        f"{sandbox.url}/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    assert answer.status_code == 401


def test_unlinking_revokes_the_link_and_the_member_tokens_not_the_account(sandbox, tr):
    native = sandbox.control("POST", "seed")["members"][0]
    verifier, challenge = pkce()
    code = code_from(consent(sandbox, challenge, native["email"]))["code"][0]
    tokens = requests.post(
        f"{sandbox.url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=("gateway", "test-client-secret"),
        timeout=5,
    ).json()
    assert tr.get_balance(native["wallet_id"]).minutes == -60 + 30
    tr.revoke_link(native["id"], "unlink-1")
    with pytest.raises(PermanentError) as caught:
        tr.get_balance(native["wallet_id"])
    assert caught.value.status == 404
    me = requests.get(
        f"{sandbox.url}/v1/me",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=5,
    )
    assert me.status_code == 401
    refreshed = requests.post(
        f"{sandbox.url}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=("gateway", "test-client-secret"),
        timeout=5,
    )
    assert refreshed.status_code == 400
    # The account is still the member's: they can link it again.
    verifier, challenge = pkce()
    code = code_from(consent(sandbox, challenge, native["email"]))["code"][0]
    assert tr.link_member(code, REDIRECT, verifier).id == native["id"]
    tr.revoke_link(native["id"], "unlink-2")
    tr.revoke_link(native["id"], "unlink-3")  # a link already gone counts as revoked

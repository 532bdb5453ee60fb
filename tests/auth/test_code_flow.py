"""Authorization code + PKCE, ID tokens, refresh rotation, against the Flask test client."""

from __future__ import annotations

import time

from joserfc import jwt
from joserfc.jwk import KeySet

from gateway.db import utcnow
from tests.auth.oidc_helpers import REDIRECT, authorize_params, log_in, pkce_pair, query
from tests.factories import create_client, create_member


def _setup(app, **client_fields):
    with app.app_context():
        member = create_member(password="correct horse battery staple", email_verified_at=utcnow())
        client, secret = create_client(
            scope="openid profile email offline_access hours:read", **client_fields
        )
        return member, client.client_id, secret


def _code(web, client_id, challenge, **extra):
    response = web.get(
        "/oauth/authorize", query_string=authorize_params(client_id, challenge, **extra)
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return query(response.headers["Location"])


def test_code_flow_issues_signed_id_token_with_nonce_and_iss(app, client):
    member, client_id, secret = _setup(app, kind="first_party")
    log_in(client, member)
    verifier, challenge = pkce_pair()
    params = _code(client, client_id, challenge)
    assert params["state"] == "st-123"
    assert params["iss"] == app.config["GATEWAY_BASE_URL"]

    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=(client_id, secret),
    )
    assert response.status_code == 200, response.json
    body = response.json
    assert body["token_type"].lower() == "bearer"
    assert body["expires_in"] == 3600
    # No offline_access, no refresh token (OIDC Core section 11).
    assert "refresh_token" not in body
    jwks = KeySet.import_key_set(client.get("/oauth/jwks").json)
    token = jwt.decode(body["id_token"], jwks, algorithms=["RS256"])
    claims = token.claims
    assert claims["iss"] == app.config["GATEWAY_BASE_URL"]
    assert claims["aud"] == client_id
    assert claims["sub"] == member.id
    assert claims["nonce"] == "n-456"
    assert claims["email"] == member.email
    assert token.header["kid"] in {k["kid"] for k in client.get("/oauth/jwks").json["keys"]}

    info = client.get(
        "/oauth/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert info.status_code == 200
    assert info.json["sub"] == member.id
    assert info.json["name"] == member.display_name


def test_not_logged_in_goes_to_login_and_comes_back(app, client):
    _, client_id, _ = _setup(app)
    _, challenge = pkce_pair()
    response = client.get(
        "/oauth/authorize",
        query_string=authorize_params(client_id, challenge, login_hint="a@example.org"),
    )
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/login?")
    target = query(location)
    assert target["login_hint"] == "a@example.org"
    assert target["next"].startswith("/oauth/authorize?")
    assert "client_id=" in target["next"]


def test_prompt_create_opens_signup(app, client):
    _, client_id, _ = _setup(app)
    _, challenge = pkce_pair()
    response = client.get(
        "/oauth/authorize", query_string=authorize_params(client_id, challenge, prompt="create")
    )
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/signup?")
    assert "prompt" not in query(
        query(response.headers["Location"])["next"].replace("/oauth/authorize", "")
    )


def test_prompt_none_without_session_answers_login_required(app, client):
    _, client_id, _ = _setup(app)
    _, challenge = pkce_pair()
    response = client.get(
        "/oauth/authorize", query_string=authorize_params(client_id, challenge, prompt="none")
    )
    assert response.status_code == 302
    params = query(response.headers["Location"])
    assert params["error"] == "login_required"
    assert params["state"] == "st-123"
    assert params["iss"] == app.config["GATEWAY_BASE_URL"]


def test_max_age_exceeded_requires_a_new_login(app, client):
    member, client_id, _ = _setup(app, kind="first_party")
    log_in(client, member, auth_time=int(time.time()) - 600)
    _, challenge = pkce_pair()
    response = client.get(
        "/oauth/authorize", query_string=authorize_params(client_id, challenge, max_age="60")
    )
    assert response.headers["Location"].startswith("/login?")
    log_in(client, member)
    response = client.get(
        "/oauth/authorize", query_string=authorize_params(client_id, challenge, max_age="60")
    )
    assert "code" in query(response.headers["Location"])


def test_third_party_client_asks_consent_once(app, client):
    member, client_id, _ = _setup(app)
    log_in(client, member)
    _, challenge = pkce_pair()
    params = authorize_params(client_id, challenge)
    page = client.get("/oauth/authorize", query_string=params)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Consenti" in html or "Allow" in html
    with client.session_transaction() as session:
        token = session["csrf"]
    refused = client.post("/oauth/authorize", query_string=params, data={"decision": "allow"})
    assert refused.status_code == 400
    allowed = client.post(
        "/oauth/authorize", query_string=params, data={"decision": "allow", "csrf_token": token}
    )
    assert "code" in query(allowed.headers["Location"])
    again = client.get("/oauth/authorize", query_string={**params, "nonce": "another"})
    assert again.status_code == 302
    assert "code" in query(again.headers["Location"])


def test_reused_nonce_is_refused(app, client):
    member, client_id, _ = _setup(app, kind="first_party")
    log_in(client, member)
    _, challenge = pkce_pair()
    assert "code" in _code(client, client_id, challenge)
    replay = _code(client, client_id, challenge)
    assert replay["error"] == "invalid_request"


def test_denied_consent_answers_access_denied(app, client):
    member, client_id, _ = _setup(app)
    log_in(client, member)
    _, challenge = pkce_pair()
    params = authorize_params(client_id, challenge)
    client.get("/oauth/authorize", query_string=params)
    with client.session_transaction() as session:
        token = session["csrf"]
    denied = client.post(
        "/oauth/authorize", query_string=params, data={"decision": "deny", "csrf_token": token}
    )
    result = query(denied.headers["Location"])
    assert result["error"] == "access_denied"
    assert result["iss"] == app.config["GATEWAY_BASE_URL"]


def test_refresh_rotates_and_reuse_revokes_the_family(app, client):
    member, client_id, secret = _setup(app, kind="first_party")
    log_in(client, member)
    verifier, challenge = pkce_pair()
    code = _code(client, client_id, challenge, scope="openid offline_access hours:read")["code"]
    first = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=(client_id, secret),
    ).json
    second = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=(client_id, secret),
    )
    assert second.status_code == 200
    second = second.json
    assert second["refresh_token"] != first["refresh_token"]
    bearer = {"Authorization": f"Bearer {second['access_token']}"}
    assert client.get("/oauth/userinfo", headers=bearer).status_code == 200

    reuse = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=(client_id, secret),
    )
    assert reuse.status_code == 400
    assert reuse.json["error"] == "invalid_grant"
    # The whole family is gone: the newest access and refresh tokens too.
    assert client.get("/oauth/userinfo", headers=bearer).status_code == 401
    after = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]},
        auth=(client_id, secret),
    )
    assert after.json["error"] == "invalid_grant"


def test_member_without_timebank_choice_is_offered_them_once(app, client):
    from gateway.federation.platforms import add_platform

    member, client_id, _ = _setup(app, kind="first_party")
    with app.app_context():
        add_platform(
            "tb",
            "timerepublik",
            "https://tb.example/api",
            credentials={"client_id": "x", "client_secret": "y"},
        )
        from gateway.db import db

        db.session.commit()
    log_in(client, member)
    _, challenge = pkce_pair()
    first = client.get("/oauth/authorize", query_string=authorize_params(client_id, challenge))
    location = first.headers["Location"]
    assert location.startswith("/account/timebanks?")
    assert query(location)["next"].startswith("/oauth/authorize?")
    second = client.get(
        "/oauth/authorize", query_string=authorize_params(client_id, challenge, nonce="other")
    )
    assert "code" in query(second.headers["Location"])


def _login_page(web, location: str, email: str):
    """Log in on the page ``location`` sent the browser to, as the member would."""
    assert location.startswith("/login?"), location
    assert web.get(location).status_code == 200
    with web.session_transaction() as session:
        token = session["csrf"]
    done = web.post(
        "/login",
        data={
            "email": email,
            "password": "correct horse battery staple",
            "next": query(location)["next"],
            "csrf_token": token,
        },
    )
    assert done.status_code == 302, done.get_data(as_text=True)
    return done.headers["Location"]


def _auth_time(web, client_id, secret, code, verifier) -> int:
    body = web.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=(client_id, secret),
    ).json
    jwks = KeySet.import_key_set(web.get("/oauth/jwks").json)
    return jwt.decode(body["id_token"], jwks, algorithms=["RS256"]).claims["auth_time"]


def test_prompt_login_keeps_the_session_until_the_new_login_succeeds(app, client):
    member, client_id, secret = _setup(app, kind="first_party")
    earlier = int(time.time()) - 600
    log_in(client, member, auth_time=earlier)
    verifier, challenge = pkce_pair()
    params = authorize_params(client_id, challenge, prompt="login")
    # A link from another site: the member is asked to log in again, not logged out.
    ask = client.get("/oauth/authorize", query_string=params)
    login_location = ask.headers["Location"]
    assert login_location.startswith("/login?")
    assert client.get("/account").status_code == 200
    page = client.get(login_location).get_data(as_text=True)
    assert member.email in page  # "you are logged in as ..."
    # Abandoned: still logged in, and going straight back does not skip the login.
    assert client.get("/account").status_code == 200
    skipped = client.get(query(login_location)["next"])
    assert skipped.headers["Location"].startswith("/login?")

    before = int(time.time())
    back = _login_page(client, login_location, member.email)
    assert back.startswith("/oauth/authorize?")
    answer = query(client.get(back).headers["Location"])
    assert "code" in answer, answer
    assert _auth_time(client, client_id, secret, answer["code"], verifier) >= before


def test_max_age_zero_completes_after_a_fresh_login(app, client):
    member, client_id, secret = _setup(app, kind="first_party")
    log_in(client, member, auth_time=time.time() - 5)
    verifier, challenge = pkce_pair()
    ask = client.get(
        "/oauth/authorize", query_string=authorize_params(client_id, challenge, max_age="0")
    )
    before = int(time.time())
    back = _login_page(client, ask.headers["Location"], member.email)
    answer = query(client.get(back).headers["Location"])
    assert "code" in answer, answer  # not sent back to the login form
    assert _auth_time(client, client_id, secret, answer["code"], verifier) >= before


def test_max_age_zero_without_a_session_completes_too(app, client):
    member, client_id, _ = _setup(app, kind="first_party")
    _, challenge = pkce_pair()
    ask = client.get(
        "/oauth/authorize", query_string=authorize_params(client_id, challenge, max_age="0")
    )
    back = _login_page(client, ask.headers["Location"], member.email)
    assert "code" in query(client.get(back).headers["Location"])


def test_a_made_up_or_another_browsers_marker_is_no_fresh_login(app, client):
    member, client_id, _ = _setup(app, kind="first_party")
    log_in(client, member)
    _, challenge = pkce_pair()
    made_up = client.get(
        "/oauth/authorize",
        query_string=authorize_params(client_id, challenge, prompt="login", fresh_login="x" * 16),
    )
    assert made_up.headers["Location"].startswith("/login?")
    # Another browser of the member's, logged in since, cannot use this browser's marker.
    marked = query(made_up.headers["Location"])["next"]
    other = app.test_client()
    log_in(other, member)
    assert other.get(marked).headers["Location"].startswith("/login?")


def test_prompt_none_with_a_too_old_login_answers_login_required_and_logs_nobody_out(app, client):
    member, client_id, _ = _setup(app, kind="first_party")
    log_in(client, member, auth_time=int(time.time()) - 600)
    _, challenge = pkce_pair()
    response = client.get(
        "/oauth/authorize",
        query_string=authorize_params(client_id, challenge, prompt="none", max_age="60"),
    )
    assert query(response.headers["Location"])["error"] == "login_required"
    assert client.get("/account").status_code == 200

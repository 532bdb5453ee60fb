"""Discovery, JWKS and key rotation, client credentials, revocation, introspection, logout."""

from __future__ import annotations

import json
from datetime import timedelta

from click.testing import CliRunner
from joserfc import jwt
from joserfc.jwk import KeySet

from gateway.auth import keys
from gateway.cli import main
from gateway.db import db, utcnow
from tests.auth.oidc_helpers import REDIRECT, authorize_params, log_in, pkce_pair, query
from tests.factories import create_client, create_member


def _cli(app_config, *args):
    env = {
        "DATABASE_URL": app_config["DATABASE_URL"],
        "GATEWAY_DATA_DIR": app_config["GATEWAY_DATA_DIR"],
        "SECRET_KEY": app_config["SECRET_KEY"],
    }
    return CliRunner().invoke(main, list(args), env=env)


def _tokens(app, client, scope="openid profile offline_access", **client_fields):
    with app.app_context():
        member = create_member()
        rp, secret = create_client(scope=scope, kind="first_party", **client_fields)
    log_in(client, member)
    verifier, challenge = pkce_pair()
    location = client.get(
        "/oauth/authorize", query_string=authorize_params(rp.client_id, challenge, scope=scope)
    ).headers["Location"]
    body = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": query(location)["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=(rp.client_id, secret),
    ).json
    return member, rp.client_id, secret, body


def test_discovery_names_every_endpoint_on_the_issuer(client, app):
    doc = client.get("/.well-known/openid-configuration").json
    base = app.config["GATEWAY_BASE_URL"]
    assert doc["issuer"] == base
    for key in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "revocation_endpoint",
        "introspection_endpoint",
        "end_session_endpoint",
    ):
        assert doc[key].startswith(base + "/"), key
        path = doc[key][len(base) :]
        assert client.open(path, method="OPTIONS").status_code != 404, path
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert "create" in doc["prompt_values_supported"]
    for scope in ("openid", "offline_access", "hours:read", "transactions:write", "admin"):
        assert scope in doc["scopes_supported"]


def test_rotation_keeps_old_key_published_until_its_tokens_expire(app, client, app_config):
    _, _client_id, _, before = _tokens(app, client)
    old_kid = jwt.decode(
        before["id_token"], KeySet.import_key_set(client.get("/oauth/jwks").json)
    ).header["kid"]
    rotated = _cli(app_config, "keys", "rotate")
    assert rotated.exit_code == 0, rotated.output
    assert f"{old_kid} stays published until" in rotated.output
    published = client.get("/oauth/jwks").json
    kids = [k["kid"] for k in published["keys"]]
    assert old_kid in kids
    assert len(kids) == 2
    for key in published["keys"]:
        assert "d" not in key  # never a private part
    # A token signed before the rotation still verifies; new ones use the new key.
    jwt.decode(before["id_token"], KeySet.import_key_set(published))
    _, _, _, after = _tokens(app, client)
    new_kid = jwt.decode(after["id_token"], KeySet.import_key_set(published)).header["kid"]
    assert new_kid != old_kid
    with app.app_context():
        later = utcnow() + timedelta(seconds=keys.ID_TOKEN_LIFETIME) + timedelta(minutes=10)
        assert old_kid not in [row.kid for row in keys.published_keys(later)]
        keys.rotate(now=later)
        remaining = [row.kid for row in keys.published_keys(later)]
    assert old_kid not in remaining
    assert new_kid in remaining


def test_client_credentials_for_machine_clients(app, client):
    with app.app_context():
        machine, secret = create_client(scope="admin", kind="machine")
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "admin"},
        auth=(machine.client_id, secret),
    )
    assert response.status_code == 200, response.json
    assert response.json["scope"] == "admin"
    assert "refresh_token" not in response.json
    assert response.headers["Cache-Control"] == "no-store"
    bad = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(machine.client_id, secret + "x"),
    )
    assert bad.status_code == 401


def test_introspection_and_revocation(app, client):
    _, client_id, secret, body = _tokens(app, client)
    auth = (client_id, secret)
    active = client.post("/oauth/introspect", data={"token": body["access_token"]}, auth=auth).json
    assert active["active"] is True
    assert active["client_id"] == client_id
    assert active["iss"] == app.config["GATEWAY_BASE_URL"]
    # Another client may not learn anything about this token.
    with app.app_context():
        other, other_secret = create_client(scope="openid")
    hidden = client.post(
        "/oauth/introspect",
        data={"token": body["access_token"]},
        auth=(other.client_id, other_secret),
    ).json
    assert hidden == {"active": False}
    # Revoking the refresh token ends the whole grant.
    revoked = client.post(
        "/oauth/revoke",
        data={"token": body["refresh_token"], "token_type_hint": "refresh_token"},
        auth=auth,
    )
    assert revoked.status_code == 200
    inactive = client.post(
        "/oauth/introspect", data={"token": body["access_token"]}, auth=auth
    ).json
    assert inactive == {"active": False}
    # Unknown tokens are answered like revoked ones (RFC 7009 section 2.2).
    assert client.post("/oauth/revoke", data={"token": "nope"}, auth=auth).status_code == 200


def test_logout_with_hint_redirects_only_to_registered_uri(app, client):
    _, _client_id, _, body = _tokens(
        app, client, post_logout_redirect_uris=["https://site.example/bye"]
    )
    response = client.get(
        "/oauth/logout",
        query_string={
            "id_token_hint": body["id_token"],
            "post_logout_redirect_uri": "https://site.example/bye",
            "state": "s1",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "https://site.example/bye?state=s1"
    assert client.get("/account").status_code == 302  # logged out


def test_logout_never_redirects_to_unregistered_uri(app, client):
    _, _, _, body = _tokens(app, client, post_logout_redirect_uris=["https://site.example/bye"])
    response = client.get(
        "/oauth/logout",
        query_string={
            "id_token_hint": body["id_token"],
            "post_logout_redirect_uri": "https://evil.example/phish",
        },
    )
    assert response.status_code == 200
    assert "Location" not in response.headers


def test_logout_without_hint_asks_first_and_needs_csrf(app, client):
    _tokens(app, client)
    page = client.get(
        "/oauth/logout", query_string={"post_logout_redirect_uri": "https://site.example/bye"}
    )
    assert page.status_code == 200
    assert "Location" not in page.headers
    forged = client.post("/oauth/logout/confirm")
    assert forged.status_code == 400
    assert client.get("/account").status_code == 200  # still logged in
    with client.session_transaction() as session:
        token = session["csrf"]
    done = client.post("/oauth/logout/confirm", data={"csrf_token": token})
    assert done.status_code == 200
    assert client.get("/account").status_code == 302  # logged out


def test_forged_id_token_hint_is_refused(app, client):
    _, _, _, body = _tokens(app, client, post_logout_redirect_uris=["https://site.example/bye"])
    header, payload, signature = body["id_token"].split(".")
    forged = f"{header}.{payload}.{signature[::-1]}"
    response = client.get(
        "/oauth/logout",
        query_string={
            "id_token_hint": forged,
            "post_logout_redirect_uri": "https://site.example/bye",
        },
    )
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_clients_cli_create_list_revoke(app, app_config):
    created = _cli(
        app_config,
        "clients",
        "create",
        "--name",
        "Sito",
        "--kind",
        "third_party",
        "--redirect-uri",
        "https://sito.example/cb",
        "--scope",
        "openid profile email",
        "--json",
    )
    assert created.exit_code == 0, created.output
    data = json.loads(created.output)
    assert data["client_secret"]
    assert data["redirect_uris"] == ["https://sito.example/cb"]
    assert data["kind"] == "third_party"
    assert data["grant_types"] == ["authorization_code", "refresh_token"]
    listed = _cli(app_config, "clients", "list")
    assert data["client_id"] in listed.output
    assert "third_party" in listed.output
    assert data["client_secret"] not in listed.output
    public = _cli(
        app_config,
        "clients",
        "create",
        "--name",
        "App",
        "--kind",
        "third_party",
        "--redirect-uri",
        "http://127.0.0.1:8080/cb",
        "--scope",
        "openid",
        "--public",
        "--json",
    )
    assert json.loads(public.output)["client_secret"] is None
    revoked = _cli(app_config, "clients", "revoke", data["client_id"])
    assert revoked.exit_code == 0
    assert "revoked" in _cli(app_config, "clients", "list").output


def test_clients_cli_refuses_bad_input(app, app_config):
    for args in (
        ("--scope", "openid", "--redirect-uri", "http://site.example/cb"),
        ("--scope", "openid", "--redirect-uri", "https://site.example/cb#x"),
        ("--scope", "openid wizard", "--redirect-uri", "https://site.example/cb"),
        ("--scope", "openid", "--public"),
    ):
        result = _cli(
            app_config, "clients", "create", "--name", "X", "--kind", "third_party", *args
        )
        assert result.exit_code == 2, (args, result.output)
        assert result.output.startswith("Error: "), result.output
    assert _cli(app_config, "clients", "revoke", "nope").exit_code == 2


def test_housekeeping_prunes_spent_codes_and_dead_tokens(app, client):
    import time

    from gateway.auth.housekeeping import prune_sign_on
    from gateway.auth.models import AuthorizationCode, OAuthToken

    _tokens(app, client)
    with app.app_context():
        assert prune_sign_on() == {"codes": 0, "tokens": 0, "assertions": 0, "keys": 0}
        later = time.time() + 70 * 24 * 3600  # refresh life (30 d) + retention (30 d) passed
        assert prune_sign_on(now=later) == {"codes": 1, "tokens": 1, "assertions": 0, "keys": 0}
        from gateway.db import db

        assert db.session.query(AuthorizationCode).count() == 0
        assert db.session.query(OAuthToken).count() == 0


def test_code_flow_without_scope_gets_the_default_scope_but_no_id_token(app, client):
    with app.app_context():
        member = create_member()
        rp, secret = create_client(
            scope="openid profile hours:read transactions:write",
            default_scope="openid profile hours:read",
            kind="first_party",
        )
    log_in(client, member)
    verifier, challenge = pkce_pair()
    params = authorize_params(rp.client_id, challenge)
    del params["scope"]
    location = client.get("/oauth/authorize", query_string=params).headers["Location"]
    body = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": query(location)["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=(rp.client_id, secret),
    ).json
    # openid is left out: a request that did not ask for it is plain OAuth.
    assert body["scope"] == "hours:read profile"
    assert "id_token" not in body


def test_client_credentials_without_scope_get_the_default_scope(app, client):
    with app.app_context():
        site, secret = create_client(
            scope="openid hours:read transactions:write", kind="first_party"
        )
        narrow, narrow_secret = create_client(
            scope="hours:read transactions:write", default_scope="hours:read", kind="first_party"
        )
    # Every registered scope a client's own token can carry: openid needs a member.
    default = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(site.client_id, secret)
    ).json
    assert default["scope"] == "hours:read transactions:write"
    chosen = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(narrow.client_id, narrow_secret),
    ).json
    assert chosen["scope"] == "hours:read"


def test_default_scope_is_set_at_registration(app, app_config):
    common = ("clients", "create", "--name", "X", "--kind", "first_party", "--json")
    chosen = _cli(
        app_config,
        *common,
        "--scope",
        "openid hours:read transactions:write",
        "--grant",
        "client_credentials",
        "--default-scope",
        "hours:read",
    )
    assert json.loads(chosen.output)["default_scope"] == "hours:read"
    whole = _cli(
        app_config, *common, "--scope", "transactions:write", "--grant", "client_credentials"
    )
    assert json.loads(whole.output)["default_scope"] == "transactions:write"


def test_consent_for_a_request_without_scope_shows_the_default_scope(app, client):
    with app.app_context():
        member = create_member(email_verified_at=utcnow())
        rp, _ = create_client(scope="hours:read transactions:write", kind="third_party")
    log_in(client, member)
    params = authorize_params(rp.client_id, pkce_pair()[1], ui_locales="en")
    del params["scope"]
    page = client.get("/oauth/authorize", query_string=params)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    # The member sees what the code will grant: the client's default scope.
    assert "read your hour balance and transactions" in html
    assert "record hour exchanges for you" in html


def test_introspection_says_inactive_once_the_member_is_disabled(app, client):
    from gateway.members.models import Member

    member, client_id, secret, body = _tokens(app, client)
    with app.app_context():
        db.session.get(Member, member.id).status = "disabled"
        db.session.commit()
    for token in (body["access_token"], body["refresh_token"]):
        answer = client.post("/oauth/introspect", data={"token": token}, auth=(client_id, secret))
        assert answer.json == {"active": False}

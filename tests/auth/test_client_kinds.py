"""Client kinds: what each kind may be registered for, and what its tokens may do.

The issue's repro: a third-party relying party registered with ``transactions:write`` got a
client-credentials token and posted between two unrelated members. Every refusal here goes
through the real endpoints: registration (the CLI), the token endpoint, the API.
"""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner

from gateway.auth.models import OAuthClient
from gateway.cli import main
from gateway.db import db, utcnow
from gateway.ledger import services as ledger
from tests.auth.oidc_helpers import REDIRECT, authorize_params, log_in, pkce_pair, query
from tests.factories import create_client, create_member
from tests.live import form_token

WRITE = "openid hours:read transactions:write"


def _cli(app_config, *args):
    env = {
        "DATABASE_URL": app_config["DATABASE_URL"],
        "GATEWAY_DATA_DIR": app_config["GATEWAY_DATA_DIR"],
        "SECRET_KEY": app_config["SECRET_KEY"],
    }
    return CliRunner().invoke(main, ["clients", "create", "--name", "X", *args], env=env)


def _created(app_config, *args) -> dict:
    result = _cli(app_config, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _client_credentials(client, client_id, secret, scope=None):
    data = {"grant_type": "client_credentials"}
    if scope:
        data["scope"] = scope
    return client.post("/oauth/token", data=data, auth=(client_id, secret))


def _post(client, token, payer, payee, kind="help"):
    party = {"member_id": payee} if kind == "help" else {"organization_id": payee}
    return client.post(
        "/api/v1/transactions",
        json={"payer": {"member_id": payer}, "payee": party, "minutes": 60, "kind": kind},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())},
    )


@pytest.fixture
def members(app):
    with app.app_context():
        anna, bruno = (
            create_member(email_verified_at=utcnow()),
            create_member(email_verified_at=utcnow()),
        )
        coop = ledger.create_organization(name="Cooperativa Il Grillo", municipio=4)
        db.session.commit()
        return anna, bruno, coop.id


def _member_token(app, client, member, rp_id, secret, scope=WRITE):
    """A member's token for a third-party client, through login, consent and the token endpoint."""
    log_in(client, member)
    verifier, challenge = pkce_pair()
    params = authorize_params(rp_id, challenge, scope=scope)
    page = client.get("/oauth/authorize", query_string=params)
    assert page.status_code == 200, page.headers  # the consent screen
    allowed = client.post(
        "/oauth/authorize",
        query_string=params,
        data={"decision": "allow", "csrf_token": form_token(page.get_data(as_text=True))},
    )
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": query(allowed.headers["Location"])["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=(rp_id, secret),
    )
    assert response.status_code == 200, response.json
    return response.json["access_token"]


# -- registration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("--kind", "machine", "--scope", "admin", "--redirect-uri", "https://m.example/cb"),
         "no redirect URIs"),
        (("--kind", "machine", "--scope", "admin", "--public"), "cannot be public"),
        (("--kind", "machine", "--scope", "openid admin"), "may not hold openid"),
        (("--kind", "machine", "--scope", "transactions:write"), "may not hold transactions"),
        (("--kind", "machine", "--scope", "admin", "--grant", "authorization_code"),
         "redirect URI"),
        (("--kind", "third_party", "--scope", WRITE, "--redirect-uri", "https://r.example/cb",
          "--grant", "client_credentials"), "cannot use client_credentials"),
        (("--kind", "third_party", "--scope", "openid admin", "--redirect-uri",
          "https://r.example/cb"), "never delegated"),
        (("--kind", "third_party", "--scope", "openid"), "needs a redirect URI"),
        (("--kind", "first_party", "--scope", "openid"), "or --grant client_credentials"),
        (("--kind", "first_party", "--scope", WRITE, "--redirect-uri", "https://s.example/cb",
          "--public", "--grant", "client_credentials"), "public client has no secret"),
        (("--kind", "first_party", "--scope", "openid", "--redirect-uri", "https://s.example/cb",
          "--default-scope", "openid email"), "within the client's scope"),
        (("--kind", "machine", "--scope", "admin", "--post-logout-redirect-uri",
          "https://m.example/"), "sign members in"),
        (("--kind", "galaxy", "--scope", "openid"), "Invalid value for '--kind'"),
        (("--scope", "openid", "--redirect-uri", "https://r.example/cb"),
         "Missing option '--kind'"),
        (("--first-party", "--kind", "first_party", "--scope", "openid", "--redirect-uri",
          "https://s.example/cb"), "No such option '--first-party'"),
    ],
)  # fmt: skip
def test_registration_refuses_what_the_kind_cannot_be(app, app_config, args, reason):
    result = _cli(app_config, *args)
    assert result.exit_code == 2, result.output
    assert reason in result.output
    with app.app_context():
        assert db.session.query(OAuthClient).count() == 0


def test_each_kind_is_registered_with_its_grants(app, app_config):
    site = _created(
        app_config,
        "--kind", "first_party", "--scope", WRITE, "--redirect-uri", "https://s.example/cb",
        "--grant", "client_credentials",
    )  # fmt: skip
    assert site["kind"] == "first_party"
    assert site["grant_types"] == ["authorization_code", "refresh_token", "client_credentials"]
    rp = _created(
        app_config, "--kind", "third_party", "--scope", WRITE, "--redirect-uri",
        "https://r.example/cb",
    )  # fmt: skip
    assert rp["grant_types"] == ["authorization_code", "refresh_token"]
    machine = _created(app_config, "--kind", "machine", "--scope", "admin")
    assert machine["grant_types"] == ["client_credentials"]
    assert machine["redirect_uris"] == []
    assert machine["client_secret"]
    spa = _created(
        app_config, "--kind", "third_party", "--scope", "openid", "--public", "--redirect-uri",
        "https://p.example/cb",
    )  # fmt: skip
    assert spa["token_endpoint_auth_method"] == "none"
    assert spa["client_secret"] is None


# -- the token endpoint -------------------------------------------------------------------


def test_third_party_client_gets_no_client_credentials_token(app, app_config, client):
    """The issue's repro, registered as an operator would and refused at the token endpoint."""
    rp = _created(
        app_config, "--kind", "third_party", "--scope", WRITE, "--redirect-uri",
        "https://r.example/cb",
    )  # fmt: skip
    response = _client_credentials(
        client, rp["client_id"], rp["client_secret"], "transactions:write"
    )
    assert response.status_code == 400
    assert response.json["error"] == "unauthorized_client"
    assert "access_token" not in response.json


def test_a_stored_grant_beyond_the_kind_is_not_honoured(app, client):
    # A row as every confidential client was registered before kinds: client credentials for all.
    with app.app_context():
        rp, secret = create_client(
            scope=WRITE,
            kind="third_party",
            grant_types=["authorization_code", "refresh_token", "client_credentials"],
        )
    response = _client_credentials(client, rp.client_id, secret)
    assert response.json["error"] == "unauthorized_client"


def test_client_credentials_never_carry_a_members_scope(app, client):
    with app.app_context():
        site, secret = create_client(scope=WRITE, kind="first_party")
    refused = _client_credentials(client, site.client_id, secret, "openid transactions:write")
    assert refused.status_code == 400
    assert refused.json["error"] == "invalid_scope"
    granted = _client_credentials(client, site.client_id, secret, "transactions:write")
    assert granted.status_code == 200
    assert granted.json["scope"] == "transactions:write"


def test_public_client_gets_no_client_credentials_token(app, client):
    with app.app_context():
        spa, _ = create_client(
            scope="openid",
            kind="first_party",
            is_public=True,
            secret_hash=None,
            grant_types=["authorization_code", "refresh_token", "client_credentials"],
        )
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials", "client_id": spa.client_id}
    )
    assert response.status_code in (400, 401)
    assert "access_token" not in response.json


# -- what the tokens may do ----------------------------------------------------------------


def test_website_back_end_posts_between_any_members(app, client, members):
    anna, bruno, coop = members
    with app.app_context():
        site, secret = create_client(scope=WRITE, kind="first_party")
    token = _client_credentials(client, site.client_id, secret).json["access_token"]
    assert _post(client, token, anna.id, bruno.id).status_code == 201
    assert _post(client, token, bruno.id, coop, kind="desk").status_code == 201


def test_machine_token_cannot_post_between_members(app, client, members):
    anna, bruno, _ = members
    # A machine client as the old registration made it, holding transactions:write.
    with app.app_context():
        machine, secret = create_client(scope="transactions:write admin", kind="machine")
    token = _client_credentials(client, machine.client_id, secret, "admin").json["access_token"]
    refused = _post(client, token, anna.id, bruno.id)
    assert refused.status_code == 403
    assert refused.headers["WWW-Authenticate"].startswith('Bearer realm="gateway"')
    with app.app_context():
        assert ledger.get_balance(ledger.account_for_member(anna.id).id) == 0


def test_legacy_token_of_a_machine_client_cannot_post(app, client, members):
    """A token issued before kinds with transactions:write: the API refuses it all the same."""
    from gateway.auth.tokens import issue_token

    anna, bruno, _ = members
    with app.app_context():
        machine, _ = create_client(scope="transactions:write admin", kind="machine")
        token = issue_token(machine.client_id, "transactions:write")
    response = _post(client, token, anna.id, bruno.id)
    assert response.status_code == 403
    assert response.json["type"].endswith("/insufficient-scope")


def test_client_token_of_a_third_party_cannot_post_or_reverse(app, client, members):
    """Even holding a client token somehow (issued before kinds), a relying party posts nothing."""
    from gateway.auth.tokens import issue_token

    anna, bruno, _ = members
    with app.app_context():
        rp, _ = create_client(scope=WRITE, kind="third_party")
        site, site_secret = create_client(scope=WRITE, kind="first_party")
        token = issue_token(rp.client_id, "transactions:write")
    site_token = _client_credentials(client, site.client_id, site_secret).json["access_token"]
    posted = _post(client, site_token, anna.id, bruno.id).json
    refused = _post(client, token, anna.id, bruno.id)
    assert refused.status_code == 403
    assert refused.json["code"] == "client_token_not_allowed"
    reversal = client.post(
        f"/api/v1/transactions/{posted['id']}/reversal",
        json={"reason": "no"},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())},
    )
    assert reversal.status_code == 403
    assert reversal.json["code"] == "client_token_not_allowed"


def test_third_party_member_token_acts_only_for_its_member(app, client, members):
    anna, bruno, coop = members
    with app.app_context():
        rp, secret = create_client(scope=WRITE, kind="third_party")
        bruno_account = ledger.account_for_member(bruno.id).id
        db.session.commit()
    token = _member_token(app, client, anna, rp.client_id, secret)
    # As the payer, for anna: allowed.
    assert _post(client, token, anna.id, coop, kind="desk").status_code == 201
    # Moving bruno's hours, to anna or to anyone: refused.
    for payee in (anna.id, create_other_member(app)):
        refused = _post(client, token, bruno.id, payee)
        assert refused.status_code == 403
        assert refused.json["code"] == "forbidden"
    # Reading bruno's account: refused.
    read = client.get(
        f"/api/v1/accounts/{bruno_account}", headers={"Authorization": f"Bearer {token}"}
    )
    assert read.status_code == 403
    with app.app_context():
        assert ledger.get_balance(bruno_account) == 0


def create_other_member(app) -> str:
    with app.app_context():
        return create_member().id


def test_admin_on_a_members_token_needs_an_operator(app, client):
    with app.app_context():
        site, secret = create_client(scope="openid admin", kind="first_party")
        member, operator = create_member(), create_member(is_admin=True)
    member_token = _first_party_token(client, member, site.client_id, secret)
    operator_token = _first_party_token(client, operator, site.client_id, secret)
    # The code was issued without admin for the member who is not an operator.
    assert member_token["scope"] == "openid"
    assert operator_token["scope"] == "admin openid"
    for token, status in ((member_token, 403), (operator_token, 200)):
        response = client.get(
            "/api/v1/organizations",
            headers={"Authorization": f"Bearer {token['access_token']}"},
        )
        assert response.status_code == status


def _first_party_token(client, member, client_id, secret) -> dict:
    log_in(client, member)
    verifier, challenge = pkce_pair()
    params = authorize_params(client_id, challenge, scope="openid admin", nonce=member.id)
    location = client.get("/oauth/authorize", query_string=params).headers["Location"]
    return client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": query(location)["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=(client_id, secret),
    ).json


def test_an_operator_demoted_loses_admin_on_tokens_already_issued(app, client):
    from gateway.auth.tokens import issue_token
    from gateway.members.models import Member

    with app.app_context():
        site, _ = create_client(scope="openid admin", kind="first_party")
        operator = create_member(is_admin=True)
        token = issue_token(site.client_id, "admin", member_id=operator.id)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/organizations", headers=headers).status_code == 200
    with app.app_context():
        db.session.get(Member, operator.id).is_admin = False
        db.session.commit()
    assert client.get("/api/v1/organizations", headers=headers).status_code == 403


def test_third_party_client_with_admin_introspects_only_its_own(app, client):
    """A relying party's stored ``admin`` scope (from before kinds) reaches nothing."""
    from gateway.auth.tokens import issue_token

    with app.app_context():
        rp, secret = create_client(scope="openid admin", kind="third_party")
        other, _ = create_client(scope="openid", kind="first_party")
        token = issue_token(other.client_id, "openid", member_id=create_member().id)
    answer = client.post("/oauth/introspect", data={"token": token}, auth=(rp.client_id, secret))
    assert answer.json == {"active": False}


def test_machine_client_with_admin_introspects_any_token(app, client):
    from gateway.auth.tokens import issue_token

    with app.app_context():
        ops, secret = create_client(scope="admin", kind="machine")
        other, _ = create_client(scope="openid", kind="first_party")
        token = issue_token(other.client_id, "openid", member_id=create_member().id)
    answer = client.post("/oauth/introspect", data={"token": token}, auth=(ops.client_id, secret))
    assert answer.json["active"] is True
    assert answer.json["client_id"] == other.client_id

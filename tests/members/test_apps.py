"""The "apps with access" page: what the member granted, and revoking it."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from gateway.auth.models import ClientConsent, OAuthToken
from gateway.db import db, utcnow
from tests.auth.oidc_helpers import REDIRECT, authorize_params, log_in, pkce_pair, query
from tests.factories import create_client, create_member
from tests.members.helpers import csrf

SCOPE = "openid offline_access hours:read"


def _consent_and_tokens(web, client_id: str, secret: str) -> dict:
    """Go through the consent screen, allow, and exchange the code."""
    verifier, challenge = pkce_pair()
    params = authorize_params(client_id, challenge, scope=SCOPE, nonce=secrets.token_hex(8))
    screen = web.get("/oauth/authorize", query_string=params)
    if screen.status_code == 200:
        screen = web.post(
            "/oauth/authorize",
            query_string=params,
            data={"decision": "allow", "csrf_token": csrf(web)},
        )
    code = query(screen.headers["Location"])["code"]
    response = web.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=(client_id, secret),
    )
    assert response.status_code == 200, response.json
    return response.json


def _alive(web, tokens: dict) -> bool:
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    return web.get("/oauth/userinfo", headers=bearer).status_code == 200


@pytest.fixture
def world(app):
    with app.app_context():
        member = create_member(email="olga@example.org", email_verified_at=utcnow())
        other = create_member(email="piero@example.org", email_verified_at=utcnow())
        bottega, bottega_secret = create_client(scope=SCOPE, name="Bottega Solidale")
        quartiere, quartiere_secret = create_client(scope=SCOPE, name="Quartiere Aperto")
        website, website_secret = create_client(scope=SCOPE, name="Sito", kind="first_party")
    return {
        "member": member,
        "other": other,
        "bottega": (bottega.client_id, bottega_secret),
        "quartiere": (quartiere.client_id, quartiere_secret),
        "website": (website.client_id, website_secret),
    }


def test_the_page_lists_the_apps_the_member_consented_to(app, client, world):
    log_in(client, world["member"])
    _consent_and_tokens(client, *world["bottega"])
    _consent_and_tokens(client, *world["website"])  # first party: no consent, not listed
    stranger = app.test_client()
    log_in(stranger, world["other"])
    _consent_and_tokens(stranger, *world["quartiere"])  # someone else's grant

    page = client.get("/account/apps").get_data(as_text=True)
    html = page[page.index("<main") :]  # the header links back to the last site, "Sito"
    assert "<h1>App con accesso</h1>" in html
    assert "Bottega Solidale" in html
    assert "Quartiere Aperto" not in html
    assert "Sito" not in html
    assert "leggere il tuo saldo e i tuoi movimenti di ore" in html
    assert "restare collegato anche quando non ci sei" in html
    with app.app_context():
        granted = db.session.scalar(select(ClientConsent.granted_at))
        issued = db.session.scalar(
            select(func.max(OAuthToken.issued_at)).where(
                OAuthToken.client_id == world["bottega"][0]
            )
        )
    assert f"Accesso dato il {granted.strftime('%d/%m/%Y')}" in html
    last = datetime.fromtimestamp(issued, UTC).strftime("%d/%m/%Y")
    assert f"usata l&#39;ultima volta il {last}" in html
    assert "Revoca l&#39;accesso a Bottega Solidale" in html
    # Linked from the account page.
    assert 'href="/account/apps"' in client.get("/account").get_data(as_text=True)


def test_the_page_speaks_english_and_says_when_there_is_nothing(app, client):
    with app.app_context():
        member = create_member(locale="en", email_verified_at=utcnow())
    log_in(client, member)
    html = client.get("/account/apps").get_data(as_text=True)
    assert "<h1>Apps with access</h1>" in html
    assert "You have not given any app access." in html


def test_an_app_that_never_got_a_token_says_so(app, client, world):
    with app.app_context():
        db.session.add(
            ClientConsent(
                member_id=world["member"].id, client_id=world["bottega"][0], scope="openid"
            )
        )
        db.session.commit()
    log_in(client, world["member"])
    html = client.get("/account/apps").get_data(as_text=True)
    assert "Bottega Solidale" in html
    assert "mai usata" in html


def test_the_page_needs_a_login(client):
    response = client.get("/account/apps")
    assert response.headers["Location"] == "/login?next=%2Faccount%2Fapps"


def test_revoking_ends_the_consent_and_every_token_of_that_app(app, client, world):
    log_in(client, world["member"])
    first = _consent_and_tokens(client, *world["bottega"])
    second = _consent_and_tokens(client, *world["bottega"])  # a second family
    kept = _consent_and_tokens(client, *world["quartiere"])
    bottega_id = world["bottega"][0]

    forged = client.post(f"/account/apps/{bottega_id}/revoke")
    assert forged.status_code == 400
    assert _alive(client, first)

    done = client.post(f"/account/apps/{bottega_id}/revoke", data={"csrf_token": csrf(client)})
    assert done.status_code == 302
    assert done.headers["Location"] == "/account/apps"
    page = client.get("/account/apps").get_data(as_text=True)
    assert "Bottega Solidale non ha più accesso al tuo account." in page
    assert 'role="status"' in page
    assert not _alive(client, first)
    assert not _alive(client, second)
    refresh = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]},
        auth=world["bottega"],
    )
    assert refresh.json["error"] == "invalid_grant"
    assert _alive(client, kept)  # another app keeps its access
    # The app has to ask again.
    _, challenge = pkce_pair()
    again = client.get(
        "/oauth/authorize", query_string=authorize_params(bottega_id, challenge, scope=SCOPE)
    )
    assert again.status_code == 200


def test_revoking_an_app_one_has_not_granted_changes_nothing(app, client, world):
    stranger = app.test_client()
    log_in(stranger, world["other"])
    tokens = _consent_and_tokens(stranger, *world["quartiere"])
    log_in(client, world["member"])
    quartiere_id = world["quartiere"][0]
    response = client.post(
        f"/account/apps/{quartiere_id}/revoke", data={"csrf_token": csrf(client)}
    )
    assert response.status_code == 302
    page = client.get("/account/apps").get_data(as_text=True)
    assert "Quell&#39;app non aveva accesso al tuo account." in page
    assert _alive(stranger, tokens)
    with app.app_context():
        assert len(db.session.scalars(select(ClientConsent)).all()) == 1


def test_each_revoke_button_is_a_form_with_its_csrf_token(app, client, world):
    log_in(client, world["member"])
    _consent_and_tokens(client, *world["bottega"])
    html = client.get("/account/apps").get_data(as_text=True)
    html = html[html.index("<main") :]  # past the header's own forms
    form = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', html, re.S)
    assert form.group(1) == f"/account/apps/{world['bottega'][0]}/revoke"
    assert 'name="csrf_token"' in form.group(2)

"""Deleting an account: what the page says, the password asked again, and what the erasure
does (here, at every linked timebank, in the ledger, to every login and token); the same erase
from the operators' CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import func, select

from connectors.errors import PermanentError
from gateway.admin.models import AdminAction
from gateway.auth.models import ClientConsent, OAuthToken
from gateway.cli import main
from gateway.db import db, utcnow
from gateway.federation.consent import CONSENT_TEXT_VERSION, SHARED_FIELDS
from gateway.federation.models import Consent, Platform, PlatformLink
from gateway.federation.platforms import add_platform
from gateway.jobs import make_worker
from gateway.ledger import services as ledger
from gateway.ledger.models import Entry, Transaction
from gateway.members.models import Member, MemberSession
from gateway.sync.models import OutboxItem
from gateway.sync.remote import connector_for
from tests.auth.oidc_helpers import log_in
from tests.factories import bearer_headers, create_client, create_member
from tests.members.helpers import csrf
from tests.members.test_end_grants import SCOPE, _tokens, _works
from tests.members.test_hours import _text
from tests.sandbox.conftest import CLIENT_ID, CLIENT_SECRET, RunningSandbox, start_sandbox

PASSWORD = "anna's long enough password"


@pytest.fixture
def anna(app):
    with app.app_context():
        return create_member(
            email="anna@example.org",
            display_name="Anna Rossi",
            password=PASSWORD,
            skills=["cooking"],
            municipio=4,
            email_verified_at=utcnow(),
        )


def _platform(name: str, member=None, state: str = "active", via: str = "registration"):
    """A timebank; ``member`` linked to it with consent. Call inside an app context."""
    platform = Platform(name=name, display_name=name.upper(), connector="x", base_url="x")
    db.session.add(platform)
    db.session.flush()
    if member is not None:
        db.session.add(
            PlatformLink(
                member_id=member.id,
                platform_id=platform.id,
                state=state,
                linked_via=via,
                remote_member_id=f"m-{name}",
                remote_wallet_id=f"w-{name}",
            )
        )
        db.session.add(
            Consent(
                member_id=member.id,
                platform_id=platform.id,
                fields=list(SHARED_FIELDS),
                text_version=CONSENT_TEXT_VERSION,
            )
        )
    db.session.commit()
    return platform


def _delete(client, password: str = PASSWORD, **extra):
    return client.post(
        "/account/data/delete",
        data={"csrf_token": csrf(client), "password": password, **extra},
    )


def _member(app, member) -> Member:
    with app.app_context():
        found = db.session.get(Member, member.id)
        db.session.expunge(found)
        return found


def _outbox(app, kind: str) -> list[tuple[str, dict]]:
    with app.app_context():
        rows = db.session.scalars(select(OutboxItem).where(OutboxItem.kind == kind))
        return sorted((row.platform_id, row.payload) for row in rows)


# -- the page -----------------------------------------------------------------------------------


def test_the_page_says_what_happens_before_anything_does(app, client, anna):
    with app.app_context():
        _platform("tr", anna)
        _platform("kom", anna, via="oauth")
        _platform("old", anna, state="erased")
    log_in(client, anna)
    page = _text(client.get("/account/data/delete"))
    assert "la cancellazione arriva alle banche del tempo a cui sei collegato" in page
    assert "TR: cancelliamo l'account che ti abbiamo aperto" in page
    assert "KOM: l'account è tuo e resta tuo, ma il nostro collegamento finisce" in page
    assert "OLD" not in page
    assert "il registro delle ore non si può modificare" in page
    assert "non portano più il tuo nome" in page
    assert "ogni accesso e ogni app collegata si chiudono" in page
    assert "Non si può annullare." in page
    assert _member(app, anna).status == "active"


def test_the_page_in_english(app, client, anna):
    with app.app_context():
        db.session.get(Member, anna.id).locale = "en"
        db.session.commit()
    log_in(client, anna)
    page = _text(client.get("/account/data/delete"))
    assert "Delete your account" in page
    assert "the hour ledger cannot be changed" in page
    assert "To confirm, type your password" in page


def test_a_wrong_password_deletes_nothing(app, client, anna):
    log_in(client, anna)
    response = _delete(client, "not my password")
    assert response.status_code == 401
    assert "La password non è giusta." in _text(response)
    assert 'aria-invalid="true"' in response.get_data(as_text=True)
    member = _member(app, anna)
    assert (member.status, member.email) == ("active", "anna@example.org")
    assert client.get("/account").status_code == 200  # still logged in


def test_deleting_needs_the_csrf_token(app, client, anna):
    log_in(client, anna)
    response = client.post("/account/data/delete", data={"password": PASSWORD})
    assert response.status_code == 400
    assert _member(app, anna).status == "active"


def test_guessing_the_password_is_rate_limited(app, client, anna):
    log_in(client, anna)
    for _ in range(app.config["LOGIN_RATE_LIMIT_PER_ACCOUNT"]):
        assert _delete(client, "a guess").status_code == 401
    response = _delete(client, PASSWORD)
    assert response.status_code == 429
    assert "Retry-After" in response.headers
    assert _member(app, anna).status == "active"


# -- what the erasure does ----------------------------------------------------------------------


@pytest.fixture
def anna_everywhere(app, anna):
    """Anna on two timebanks (one she linked), with an app, a website login and postings."""
    with app.app_context():
        joined = _platform("tr", anna)
        linked = _platform("kom", anna, via="oauth")
        bruno = create_member(email="bruno@example.org", display_name="Bruno Bianchi")
        ledger.post_transfer(
            payer_account_id=ledger.account_for_member(bruno.id).id,
            payee_account_id=ledger.account_for_member(anna.id).id,
            minutes=90,
            description="",
            kind="help",
        )
        db.session.commit()
        app_client, app_secret = create_client(scope=SCOPE, name="Bottega Solidale")
        site, site_secret = create_client(
            scope=SCOPE,
            kind="first_party",
            name="Milano Sei l'Altro",
            post_logout_redirect_uris=["https://site.example/"],
        )
    return {
        "joined": joined,
        "linked": linked,
        "bruno": bruno,
        "app": (app_client.client_id, app_secret),
        "site": (site.client_id, site_secret),
    }


def test_deleting_erases_the_member_everywhere_and_keeps_the_ledger(
    app, client, anna, anna_everywhere
):
    world = anna_everywhere
    log_in(client, anna)
    with app.app_context():
        db.session.add(ClientConsent(member_id=anna.id, client_id=world["app"][0], scope=SCOPE))
        db.session.commit()
    site_tokens = _tokens(client, *world["site"])
    other_browser = app.test_client()
    log_in(other_browser, anna)
    with app.app_context():
        entries_before = db.session.scalar(select(func.count()).select_from(Entry))

    response = _delete(client)
    assert response.status_code == 302
    assert response.headers["Location"] == "/account/deleted"

    member = _member(app, anna)
    assert member.status == "erased"
    assert member.email == f"erased+{anna.id}@erased.invalid"
    assert member.display_name == f"erased-{anna.id[:8]}"
    assert (member.password_hash, member.skills, member.municipio) == (None, [], None)
    assert member.email_verified_at is None
    with app.app_context():
        consents = db.session.scalars(select(Consent).where(Consent.member_id == anna.id)).all()
        assert len(consents) == 2  # kept as the record of what was agreed,
        assert all(c.withdrawn_at is not None for c in consents)  # withdrawn
        links = {link.platform_id: link.state for link in db.session.scalars(select(PlatformLink))}
        assert set(links.values()) == {"erasing"}
        assert db.session.scalars(select(MemberSession)).all() == []
        assert db.session.scalars(select(ClientConsent)).all() == []
        tokens = db.session.scalars(select(OAuthToken).where(OAuthToken.member_id == anna.id))
        assert all(token.revoked_at is not None for token in tokens)
        # The ledger is untouched: same entries, same balances, same member id.
        assert db.session.scalar(select(func.count()).select_from(Entry)) == entries_before
        assert ledger.find_member_account(anna.id).balance_minutes == 90
    assert _outbox(app, "erase_member") == sorted(
        [(world["joined"].id, {}), (world["linked"].id, {"unlink": True})]
    )
    # Every login and token has ended, in this browser and the other.
    assert client.get("/account").status_code == 302
    assert other_browser.get("/account").status_code == 302
    assert _works(client, *world["site"], site_tokens) == (False, False)


def test_the_deleted_page_says_so_once_and_leads_back_to_the_site(
    app, client, anna, anna_everywhere
):
    log_in(client, anna)
    _tokens(client, *anna_everywhere["site"])
    _delete(client)
    response = client.get("/account/deleted")
    assert response.status_code == 200
    page = _text(response)
    assert "Il tuo account è cancellato" in page
    assert "La cancellazione sta arrivando a: KOM, TR." in page
    assert "Torna a Milano Sei l'Altro" in page
    assert 'href="https://site.example/"' in response.get_data(as_text=True)
    again = client.get("/account/deleted")
    assert again.status_code == 302
    assert again.headers["Location"] == "/"


def test_the_deleted_page_keeps_the_member_s_language(app, client, anna):
    with app.app_context():
        db.session.get(Member, anna.id).locale = "en"
        db.session.commit()
    log_in(client, anna)
    _delete(client)
    page = _text(client.get("/account/deleted", headers={"Accept-Language": "it"}))
    assert "Your account is deleted" in page
    assert "Back to" not in page  # no website signed in to: no way back to offer


def test_an_erased_member_cannot_log_in_and_the_address_is_free_again(app, client, anna):
    log_in(client, anna)
    _delete(client)
    fresh = app.test_client()
    refused = fresh.post(
        "/login",
        data={"email": "anna@example.org", "password": PASSWORD, "csrf_token": csrf(fresh)},
    )
    assert refused.status_code == 401
    signup = fresh.post(
        "/signup",
        data={
            "email": "anna@example.org",
            "display_name": "Anna again",
            "password": "a brand new long password",
            "csrf_token": csrf(fresh),
        },
    )
    assert signup.status_code == 200
    with app.app_context():
        again = db.session.scalar(select(Member).where(Member.email == "anna@example.org"))
        assert again.id != anna.id
        assert again.status == "active"
        assert ledger.find_member_account(again.id) is None  # a new account, no old hours


def test_counterparts_see_a_former_member_and_no_one_sees_the_name(
    app, client, anna, anna_everywhere
):
    bruno = anna_everywhere["bruno"]
    log_in(client, anna)
    _delete(client)

    bruno_browser = app.test_client()
    log_in(bruno_browser, bruno)
    page = _text(bruno_browser.get("/account/hours"))
    assert "Aiuto ricevuto \u22121 h 30 min" in page
    assert "con un ex membro" in page
    assert "Anna" not in page

    with app.app_context():
        account = ledger.find_member_account(bruno.id)
        member_headers = bearer_headers("hours:read", db.session.get(Member, bruno.id))
        admin_headers = bearer_headers("admin")
    statement = client.get(f"/api/v1/accounts/{account.id}/transactions", headers=member_headers)
    assert statement.status_code == 200
    assert len(statement.json["items"]) == 1
    found = client.get(f"/admin/api/members?q={anna.id}", headers=admin_headers).json["items"]
    assert [(m["email"], m["display_name"], m["status"]) for m in found] == [
        (f"erased+{anna.id}@erased.invalid", f"erased-{anna.id[:8]}", "erased")
    ]
    for body in (statement.get_data(as_text=True), str(found)):
        assert "Anna" not in body
        assert "anna@example.org" not in body


# -- the operators' CLI -------------------------------------------------------------------------


def _cli(app_config, *args, stdin: str | None = None):
    env = {
        "DATABASE_URL": app_config["DATABASE_URL"],
        "GATEWAY_DATA_DIR": app_config["GATEWAY_DATA_DIR"],
        "SECRET_KEY": app_config["SECRET_KEY"],
    }
    return CliRunner().invoke(main, list(args), env=env, input=stdin)


def test_an_operator_erases_a_member_by_address_with_an_audit_row(
    app, app_config, client, anna, anna_everywhere
):
    log_in(client, anna)
    no_reason = _cli(app_config, "members", "erase", "anna@example.org", "--yes")
    assert no_reason.exit_code == 2
    declined = _cli(
        app_config, "members", "erase", "anna@example.org", "--reason", "asked by mail", stdin="n\n"
    )
    assert declined.exit_code == 1
    assert _member(app, anna).status == "active"

    done = _cli(
        app_config, "members", "erase", "ANNA@example.org", "--reason", "asked by mail", stdin="y\n"
    )
    assert done.exit_code == 0, done.output
    assert f"Erased {anna.id}; timebanks told to erase them: kom, tr." in done.output
    assert _member(app, anna).status == "erased"
    assert client.get("/account").status_code == 302
    assert len(_outbox(app, "erase_member")) == 2
    with app.app_context():
        audit = db.session.scalars(select(AdminAction)).all()
        assert [(a.actor, a.action, a.target_id, a.reason) for a in audit] == [
            ("cli", "erase_member", anna.id, "asked by mail")
        ]


def test_the_cli_erases_by_id_and_refuses_what_it_cannot(app, app_config, anna):
    unknown = _cli(app_config, "members", "erase", "nobody@example.org", "--reason", "x", "--yes")
    assert unknown.exit_code == 2
    assert "no member" in unknown.output
    done = _cli(app_config, "members", "erase", anna.id, "--reason", "gdpr request", "--yes")
    assert done.exit_code == 0, done.output
    assert "timebanks told to erase them: none." in done.output
    twice = _cli(app_config, "members", "erase", anna.id, "--reason", "again", "--yes")
    assert twice.exit_code == 2
    assert "erased already" in twice.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AdminAction)) == 1


# -- through the outbox to real timebanks (the sandbox) ------------------------------------------


@pytest.fixture
def sandboxes(tmp_path) -> Iterator[tuple[RunningSandbox, RunningSandbox]]:
    """Two sandbox timebanks: one opens accounts for us, on the other Anna has her own."""
    first, second = start_sandbox(tmp_path / "one"), start_sandbox(tmp_path / "two")
    yield first, second
    for sandbox in (first, second):
        sandbox.server.stop()
        assert sandbox.contract_errors == []


def _deliver(app) -> None:
    with app.app_context():
        make_worker(app, fork=False).work(burst=True)


def _remote(app, platform_id: str, remote_id: str) -> dict | None:
    """The member as the platform shows them to us, or None if it no longer shows them."""
    with app.app_context():
        connector = connector_for(db.session.get(Platform, platform_id))
        try:
            return connector.client.get_member(remote_id)
        except PermanentError as error:
            if error.status == 404:
                return None
            raise


def test_a_deleted_account_is_gone_from_every_linked_timebank(app, client, anna, sandboxes):
    first, second = sandboxes
    with app.app_context():
        joined, linked = (
            add_platform(
                name,
                "timerepublik",
                sandbox.url,
                credentials={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
                options={"clearing_wallet_id": sandbox.clearing_wallet()},
                display_name=name.title(),
            )
            for name, sandbox in (("uno", first), ("due", second))
        )
        db.session.commit()
        bruno = create_member(email="bruno@example.org", display_name="Bruno Bianchi")
    log_in(client, anna)
    # Anna joins the first through us, and links the account she has on the second.
    assert (
        client.post("/account/timebanks/uno/connect", data={"csrf_token": csrf(client)}).status_code
        == 302
    )
    own = second.control("POST", "seed")["members"][0]
    started = client.post("/account/timebanks/due/link", data={"csrf_token": csrf(client)})
    params = dict(parse_qsl(urlsplit(started.headers["Location"]).query))
    answer = requests.post(
        f"{second.url}/oauth/authorize",
        data={**params, "decision": "allow", "email": own["email"]},
        allow_redirects=False,
        timeout=5,
    )
    base = app.config["GATEWAY_BASE_URL"]
    assert client.get(answer.headers["Location"][len(base) :]).status_code == 302
    _deliver(app)
    with app.app_context():
        links = {
            link.platform_id: link
            for link in db.session.scalars(
                select(PlatformLink).where(PlatformLink.member_id == anna.id)
            )
        }
        assert {link.state for link in links.values()} == {"active"}
        registered = links[joined.id].remote_member_id
        ledger.post_transfer(
            payer_account_id=ledger.account_for_member(bruno.id).id,
            payee_account_id=ledger.account_for_member(anna.id).id,
            minutes=45,
            description="",
            kind="help",
        )
        db.session.commit()
    _deliver(app)
    assert _remote(app, joined.id, registered)["display_name"] == "Anna Rossi"
    assert _remote(app, linked.id, own["id"]) is not None

    assert _delete(client).status_code == 302
    _deliver(app)

    gone = _remote(app, joined.id, registered)
    assert gone["status"] == "erased"
    assert (gone["display_name"], gone["skills"]) == ("", [])
    assert "anna" not in gone["email"]
    assert _remote(app, linked.id, own["id"]) is None  # her own account: our link is revoked
    assert [state for state, _ in _outbox_states(app, "erase_member")] == ["succeeded"] * 2
    with app.app_context():
        assert {link.state for link in db.session.scalars(select(PlatformLink))} == {"erased"}
        # The transfer stays in the ledger, under the member id that no longer names anyone.
        txn = db.session.scalar(select(Transaction).where(Transaction.kind == "help"))
        assert {e.account_id for e in txn.entries} >= {ledger.find_member_account(anna.id).id}
    bruno_browser = app.test_client()
    log_in(bruno_browser, bruno)
    page = _text(bruno_browser.get("/account/hours"))
    assert "con un ex membro" in page
    assert "Anna" not in page


def _outbox_states(app, kind: str) -> list[tuple[str, str]]:
    with app.app_context():
        rows = db.session.scalars(select(OutboxItem).where(OutboxItem.kind == kind))
        return sorted((row.state, row.platform_id) for row in rows)


# -- the callback inbox -------------------------------------------------------------------------


def test_erasing_scrubs_the_partners_events_that_name_the_member(app, anna):
    from gateway.callbacks.erasure import ERASED_REASON
    from gateway.callbacks.models import InboxEvent
    from gateway.members.accounts import erase_member

    def event(platform, webhook_id, state, data):
        body = {"id": webhook_id, "type": "member.updated", "data": data}
        db.session.add(
            InboxEvent(
                platform_id=platform.id,
                webhook_id=webhook_id,
                event_type="member.updated",
                headers={"webhook-id": webhook_id, "webhook-signature": "v1,x"},
                body=json.dumps(body),
                state=state,
            )
        )

    with app.app_context():
        tr = _platform("tr", anna)
        event(tr, "e-profile", "processed", {"id": "m-tr", "display_name": "Anna Rossi"})
        event(tr, "e-paid", "processed", {"payer_wallet_id": "w-tr", "description": "Anna's"})
        event(tr, "e-parked", "parked", {"payee_wallet_id": "w-tr", "description": "to Anna"})
        event(tr, "e-waiting", "received", {"payee_wallet_id": "w-tr", "description": "now"})
        event(tr, "e-other", "processed", {"payer_wallet_id": "w-tr2", "description": "Bruno"})
        db.session.commit()
        erase_member(db.session.get(Member, anna.id))
        db.session.commit()
        rows = {e.webhook_id: e for e in db.session.scalars(select(InboxEvent))}

        for webhook_id in ("e-profile", "e-paid", "e-parked"):
            row = rows[webhook_id]
            for personal in ("Anna", "w-tr", "m-tr"):
                assert personal not in row.body
            assert json.loads(row.body) == {
                "id": webhook_id,
                "type": "member.updated",
                "erased": True,
            }
            assert row.headers == {}
            assert row.parked_reason == ERASED_REASON
        assert rows["e-parked"].state == "ignored"
        assert rows["e-profile"].state == "processed"
        # Still to be applied: it needs its body; another member's event is theirs.
        assert "w-tr" in rows["e-waiting"].body
        assert "Bruno" in rows["e-other"].body

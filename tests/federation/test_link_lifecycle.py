"""A member's link to a timebank over its whole life: through the pages, the outbox and the
platform (the sandbox timebank, or Komunitin on mocked HTTP).

Disconnecting erases an account the gateway opened and revokes the link to one the member
brought; either way the remote ids are freed unless the platform kept the account for us, and
connecting again reuses what is left instead of opening a second account.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses
from sqlalchemy import select

from connectors.errors import PermanentError
from connectors.komunitin.connector import client_id_for
from gateway.db import db, utcnow
from gateway.federation.models import Platform, PlatformLink
from gateway.federation.platforms import add_platform
from gateway.jobs import make_worker
from gateway.sync.models import OutboxItem
from gateway.sync.remote import connector_for
from tests.auth.oidc_helpers import log_in
from tests.connectors.conftest import JSON_API, KOMUNITIN_BASE, currency_doc
from tests.connectors.test_komunitin import ACCOUNTS, account_doc
from tests.factories import create_member
from tests.members.helpers import csrf
from tests.sandbox.conftest import CLIENT_ID, CLIENT_SECRET, RunningSandbox, start_sandbox


@pytest.fixture
def sandbox(tmp_path) -> Iterator[RunningSandbox]:
    running = start_sandbox(tmp_path / "sandbox")
    yield running
    running.server.stop()
    assert running.contract_errors == []


@pytest.fixture
def platform(app, sandbox) -> Platform:
    with app.app_context():
        row = add_platform(
            "sandbox",
            "timerepublik",
            sandbox.url,
            credentials={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
            display_name="Banca di prova",
        )
        db.session.commit()
        return row


def _member(app, email: str):
    with app.app_context():
        return create_member(email=email, email_verified_at=utcnow())


def _browser(app, member):
    client = app.test_client()
    log_in(client, member)
    return client


def _post(client, step: str, name: str = "sandbox"):
    return client.post(f"/account/timebanks/{name}/{step}", data={"csrf_token": csrf(client)})


def _allow_at_the_partner(app, sandbox: RunningSandbox, client, started, email: str) -> None:
    """The member, on the partner's page, allows the link; their browser comes back."""
    authorize_url = started.headers["Location"]
    assert authorize_url.startswith(f"{sandbox.url}/oauth/authorize?")
    params = dict(parse_qsl(urlsplit(authorize_url).query))
    answer = requests.post(
        f"{sandbox.url}/oauth/authorize",
        data={**params, "decision": "allow", "email": email},
        allow_redirects=False,
        timeout=5,
    )
    base = app.config["GATEWAY_BASE_URL"]
    back = client.get(answer.headers["Location"][len(base) :])
    assert back.status_code == 302


def _deliver(app) -> None:
    """Run the drains the pages' commits queued, as a worker does."""
    with app.app_context():
        make_worker(app, fork=False).work(burst=True)


def _link(app, member) -> PlatformLink:
    with app.app_context():
        return db.session.scalar(select(PlatformLink).where(PlatformLink.member_id == member.id))


def _results(app, member, kind: str) -> list[dict]:
    with app.app_context():
        items = db.session.scalars(
            select(OutboxItem)
            .where(OutboxItem.member_id == member.id, OutboxItem.kind == kind)
            .order_by(OutboxItem.created_at)
        )
        return [(item.state, item.result) for item in items]


def _partner_sees(app, platform, remote_id: str) -> bool:
    with app.app_context():
        connector = connector_for(db.session.get(Platform, platform.id))
        try:
            connector.client.get_member(remote_id)
        except PermanentError as error:
            if error.status == 404:
                return False
            raise
        return True


def test_an_unlinked_account_is_revoked_at_the_partner_and_free_to_link_again(
    app, sandbox, platform
):
    own = sandbox.control("POST", "seed")["members"][0]  # joined the timebank on their own
    sara, other = _member(app, "sara@example.org"), _member(app, "sara.bis@example.org")
    browser = _browser(app, sara)
    _allow_at_the_partner(app, sandbox, browser, _post(browser, "link"), own["email"])
    assert (_link(app, sara).state, _link(app, sara).remote_member_id) == ("active", own["id"])

    _post(browser, "disconnect")
    _deliver(app)
    link = _link(app, sara)
    assert (link.state, link.remote_member_id, link.remote_wallet_id) == ("erased", None, None)
    assert _results(app, sara, "erase_member") == [
        ("succeeded", {"erased": False, "unlinked": True, "remote_member_id": own["id"]})
    ]
    # The partner no longer shows us the account; it stays the member's, active there.
    assert not _partner_sees(app, platform, own["id"])

    # Anyone may link that account now (the unique ids bind live links only)...
    second = _browser(app, other)
    _allow_at_the_partner(app, sandbox, second, _post(second, "link"), own["email"])
    assert (_link(app, other).state, _link(app, other).remote_member_id) == ("active", own["id"])
    # ...and while they hold it, nobody else can.
    taken = _post(browser, "link")
    _allow_at_the_partner(app, sandbox, browser, taken, own["email"])
    assert _link(app, sara).state == "erased"
    _post(second, "disconnect")
    _deliver(app)

    # Connecting again links the member's own account again: never a second account.
    page = browser.get("/account/timebanks").get_data(as_text=True)
    assert "Collega di nuovo il mio account" in page
    _allow_at_the_partner(app, sandbox, browser, _post(browser, "connect"), own["email"])
    link = _link(app, sara)
    assert (link.state, link.linked_via, link.remote_member_id) == ("active", "oauth", own["id"])
    assert _partner_sees(app, platform, own["id"])
    assert _results(app, sara, "register_member") == []


def test_an_account_the_gateway_opened_is_erased_and_a_new_one_opened_on_return(
    app, sandbox, platform
):
    rosa = _member(app, "rosa@example.org")
    browser = _browser(app, rosa)
    _post(browser, "connect")
    _deliver(app)
    first = _link(app, rosa).remote_member_id
    assert _partner_sees(app, platform, first)

    _post(browser, "disconnect")
    _deliver(app)
    assert _results(app, rosa, "erase_member") == [
        ("succeeded", {"erased": True, "unlinked": False, "remote_member_id": first})
    ]
    assert (_link(app, rosa).state, _link(app, rosa).remote_member_id) == ("erased", None)

    # The partner erased that account: there is none to reuse, so a new one is opened.
    _post(browser, "connect")
    _deliver(app)
    link = _link(app, rosa)
    assert link.state == "active"
    assert link.remote_member_id not in (None, first)


@pytest.fixture
def komunitin(app) -> Iterator[tuple[Platform, responses.RequestsMock]]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{KOMUNITIN_BASE}/TEST/currency", json=currency_doc(), content_type=JSON_API)
        with app.app_context():
            row = add_platform(
                "komunitin",
                "komunitin",
                KOMUNITIN_BASE,
                options={"currency": "TEST", "token_source": "gateway"},
            )
            db.session.commit()
        yield row, mock


def _posts(mock: responses.RequestsMock) -> int:
    return sum(1 for c in mock.calls if c.request.method == "POST" and c.request.url == ACCOUNTS)


def test_reconnecting_reuses_the_account_the_platform_kept(app, komunitin):
    _platform, mock = komunitin
    mock.post(ACCOUNTS, status=201, json=account_doc("acc-kept"), content_type=JSON_API)
    mock.get(f"{ACCOUNTS}/acc-kept", json=account_doc("acc-kept"), content_type=JSON_API)
    ada = _member(app, "ada@example.org")
    browser = _browser(app, ada)
    _post(browser, "connect", "komunitin")
    _deliver(app)
    assert (_link(app, ada).state, _link(app, ada).remote_member_id) == ("active", "acc-kept")

    _post(browser, "disconnect", "komunitin")
    _deliver(app)
    # Komunitin keeps the account (it holds no personal data): so does the link, unused.
    assert (_link(app, ada).state, _link(app, ada).remote_member_id) == ("erased", "acc-kept")

    _post(browser, "connect", "komunitin")
    _deliver(app)
    link = _link(app, ada)
    assert (link.state, link.remote_member_id, link.remote_wallet_id) == (
        "active",
        "acc-kept",
        "acc-kept",
    )
    assert _posts(mock) == 1  # one account, ever


def test_a_kept_account_found_gone_is_replaced(app, komunitin):
    platform, mock = komunitin
    mock.get(
        f"{ACCOUNTS}/acc-gone",
        json=account_doc("acc-gone", status="deleted"),
        content_type=JSON_API,
    )
    mock.post(ACCOUNTS, status=201, json=account_doc("acc-new"), content_type=JSON_API)
    ada = _member(app, "ada@example.org")
    with app.app_context():
        db.session.add(
            PlatformLink(
                member_id=ada.id,
                platform_id=platform.id,
                remote_member_id="acc-gone",
                remote_wallet_id="acc-gone",
                state="erased",
            )
        )
        db.session.commit()
    _post(_browser(app, ada), "connect", "komunitin")
    _deliver(app)
    assert (_link(app, ada).state, _link(app, ada).remote_member_id) == ("active", "acc-new")
    # The new account is made under a key of its own, so a retry finds it, not a third.
    with app.app_context():
        item = db.session.scalar(select(OutboxItem).where(OutboxItem.kind == "register_member"))
        assert item.state == "succeeded"
        key = item.idempotency_key
    (created,) = [c for c in mock.calls if c.request.method == "POST"]
    assert json.loads(created.request.body)["data"]["id"] == client_id_for(f"{key}-new")

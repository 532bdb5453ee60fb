"""The "my hours" page: the balance in words, the history with names and platforms, pages,
and each linked timebank's balance from the last reconciliation."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from sqlalchemy import select

from gateway.db import db, utcnow
from gateway.federation.models import Platform, PlatformLink
from gateway.federation.platforms import add_platform
from gateway.jobs import make_worker
from gateway.ledger import services as ledger
from gateway.members.hours_format import format_balance, format_datetime, format_minutes
from gateway.members.models import Member
from gateway.sync.models import (
    OutboxItem,
    ReconciliationDifference,
    ReconciliationRun,
    RemoteBalance,
)
from gateway.sync.reconcile import reconcile_platform
from tests.auth.oidc_helpers import log_in
from tests.factories import create_member
from tests.members.helpers import csrf
from tests.sandbox.conftest import CLIENT_ID, CLIENT_SECRET, start_sandbox


def _text(response) -> str:
    """The page's visible text, tags removed and spaces collapsed."""
    html = response.get_data(as_text=True)
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    html = re.sub(r"</?(strong|span|time|a|em)\b[^>]*>", "", html)  # inline: no space
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _move(payer, payee, minutes: int, kind: str = "help", **extra):
    """Post ``minutes`` from payer's account to payee's (members or organizations); committed."""

    def account(party):
        if hasattr(party, "email"):
            return ledger.account_for_member(party.id)
        return ledger.account_for_organization(party.id)

    txn = ledger.post_transfer(
        payer_account_id=account(payer).id,
        payee_account_id=account(payee).id,
        minutes=minutes,
        description=extra.pop("description", ""),
        kind=kind,
        **extra,
    )
    db.session.commit()
    return txn


# -- the formatting the pages (and the demo site) share ------------------------------------------


@pytest.mark.parametrize(
    ("minutes", "text"),
    [(270, "4 h 30 min"), (60, "1 h"), (45, "45 min"), (0, "0 min"), (-270, "\u22124 h 30 min")],
)
def test_minutes_read_as_hours_and_minutes(app, minutes, text):
    with app.test_request_context():
        assert format_minutes(minutes, "it") == text


def test_signed_amounts_and_balances_in_words(app):
    with app.test_request_context():
        assert format_minutes(90, "en", signed=True) == "+1 h 30 min"
        assert format_minutes(-30, "en", signed=True) == "\u221230 min"
        assert format_balance(270, "it") == "4 h 30 min in credito"
        assert format_balance(-240, "it") == "4 h in debito"
        assert format_balance(-240, "en") == "4 h in debit"
        assert format_balance(0, "en") == "0 min: even"


def test_times_are_shown_in_the_community_time_zone(make_app):
    moment = datetime(2026, 12, 3, 13, 5, tzinfo=UTC)
    with make_app().test_request_context():
        assert format_datetime(moment, "it") == "3/12/2026 alle 14:05"  # Rome, winter: UTC+1
        assert format_datetime(moment, "en") == "3/12/2026 at 14:05"
    with make_app(MEMBERS_TIMEZONE="UTC").test_request_context():
        assert format_datetime(moment, "en") == "3/12/2026 at 13:05"


def test_a_wrong_time_zone_stops_the_gateway_with_one_sentence(make_app):
    from gateway.config import ConfigError

    with pytest.raises(ConfigError, match="MEMBERS_TIMEZONE must be a time zone"):
        make_app(MEMBERS_TIMEZONE="Milano/Centro")


# -- the page ------------------------------------------------------------------------------------


@pytest.fixture
def people(app):
    with app.app_context():
        anna = create_member(email="anna@example.org", display_name="Anna Rossi", locale="it")
        bruno = create_member(email="bruno@example.org", display_name="Bruno Bianchi")
        carla = create_member(email="carla@example.org", display_name="Carla Verdi")
        coop = ledger.create_organization(name="Cooperativa Il Portico")
        db.session.commit()
        return {"anna": anna, "bruno": bruno, "carla": carla, "coop": coop}


def test_the_page_asks_visitors_to_log_in(client):
    response = client.get("/account/hours")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=%2Faccount%2Fhours"


def test_a_member_without_postings_sees_a_zero_balance(app, client, people):
    log_in(client, people["carla"])
    page = _text(client.get("/account/hours"))
    assert "Le mie ore" in page
    assert "0 min: in pari" in page
    assert "Ancora nessun movimento." in page
    assert "Non sei collegato a nessuna banca del tempo." in page


def test_balance_and_history_name_the_other_side_and_the_kind(app, client, people):
    with app.app_context():
        _move(people["bruno"], people["anna"], 90, "help", description="Spesa al mercato")
        _move(people["anna"], people["coop"], 360, "desk")
        _move(people["carla"], people["anna"], 30, "transfer")
    log_in(client, people["anna"])

    page = _text(client.get("/account/hours"))
    assert "4 h in debito" in page  # 90 - 360 + 30 = -240
    history = page.split("Movimenti", 1)[1]
    assert "Ore ricevute +30 min" in history
    assert "Postazione usata \u22126 h" in history
    assert "Aiuto dato +1 h 30 min" in history
    assert "· con Carla Verdi" in history
    assert "· con Cooperativa Il Portico" in history
    assert "· con Bruno Bianchi" in history
    assert "Spesa al mercato" in page
    # Newest first.
    assert page.index("Ore ricevute") < page.index("Postazione usata") < page.index("Aiuto dato")
    assert "bruno@example.org" not in page  # names, never addresses


def test_the_page_speaks_english_to_an_english_member(app, client, people):
    with app.app_context():
        db.session.get(Member, people["anna"].id).locale = "en"
        db.session.commit()
        _move(people["anna"], people["bruno"], 45, "help")
    log_in(client, people["anna"])
    page = _text(client.get("/account/hours", headers={"Accept-Language": "it"}))
    assert "My hours" in page
    assert "45 min in debit" in page
    assert "Help received \u221245 min" in page
    assert "with Bruno Bianchi" in page


def test_history_pages_follow_a_cursor_and_a_bad_cursor_gets_its_own_page(app, client, people):
    with app.app_context():
        for minutes in range(1, 26):  # 25 postings: a page of 20, then 5
            _move(people["bruno"], people["anna"], minutes, "help")
    log_in(client, people["anna"])

    first = client.get("/account/hours").get_data(as_text=True)
    assert first.count('class="posting"') == 20
    assert "+25 min" in first
    assert "+6 min" in first
    assert "+5 min" not in first
    older = re.search(r'href="(/account/hours\?cursor=[^"]+)" rel="next"', first).group(1)
    second = client.get(older.replace("&amp;", "&")).get_data(as_text=True)
    assert second.count('class="posting"') == 5
    assert "+5 min" in second
    assert "+1 min" in second
    assert "+6 min" not in second
    assert 'rel="next"' not in second
    assert "Il tuo saldo: 5 h 25 min in credito." in _text(client.get(older))  # short, and
    assert "Letto il" not in second  # the timebanks' readings stay on the first page
    assert 'href="/account/hours"' in second  # back to the newest

    bad = client.get("/account/hours?cursor=not-a-cursor")
    assert bad.status_code == 400
    assert "Questa pagina dei movimenti non esiste" in _text(bad)
    assert 'href="/account/hours"' in bad.get_data(as_text=True)


def test_a_member_sees_only_their_own_history(app, client, people):
    with app.app_context():
        _move(people["bruno"], people["carla"], 120, "help", description="Solo tra loro")
    log_in(client, people["anna"])
    page = _text(client.get("/account/hours"))
    assert "Solo tra loro" not in page
    assert "0 min: in pari" in page


# -- platforms: where a posting came from or went, and each timebank's balance --------------------


@pytest.fixture
def timebank(app, people):
    """A timebank Anna is linked to (her wallet w-anna), and one she is still joining."""
    with app.app_context():
        platform = Platform(
            name="tr",
            display_name="TimeRepublik",
            connector="timerepublik",
            base_url="https://tr.example",
            options={"clearing_wallet_id": "w-clearing"},
        )
        other = Platform(name="kom", display_name="Komunitin", connector="komunitin", base_url="x")
        db.session.add_all([platform, other])
        db.session.flush()
        db.session.add(
            PlatformLink(
                member_id=people["anna"].id,
                platform_id=platform.id,
                state="active",
                remote_member_id="m-anna",
                remote_wallet_id="w-anna",
            )
        )
        db.session.add(
            PlatformLink(member_id=people["anna"].id, platform_id=other.id, state="pending")
        )
        db.session.commit()
        return platform


def _reading(platform: Platform, wallet: str, minutes: int, **difference) -> ReconciliationRun:
    """A finished reconciliation run that read ``wallet`` at ``minutes``; committed."""
    finished = datetime(2026, 12, 3, 13, 5, tzinfo=UTC)
    run = ReconciliationRun(
        platform_id=platform.id,
        state="succeeded",
        started_at=finished - timedelta(seconds=30),
        finished_at=finished,
    )
    db.session.add(run)
    db.session.flush()
    db.session.add(RemoteBalance(run_id=run.id, remote_wallet_id=wallet, minutes=minutes))
    if difference:
        db.session.add(
            ReconciliationDifference(
                run_id=run.id, platform_id=platform.id, remote_wallet_id=wallet, **difference
            )
        )
    db.session.commit()
    return run


def _balances(client) -> str:
    page = _text(client.get("/account/hours"))
    return page.split("Il tuo saldo", 1)[1].split("Movimenti", 1)[0]


def test_postings_say_where_they_came_from_and_where_they_were_sent(app, client, people, timebank):
    with app.app_context():
        clearing = ledger.clearing_account(timebank.id)
        imported = ledger.post_transfer(
            payer_account_id=clearing.id,
            payee_account_id=ledger.account_for_member(people["anna"].id).id,
            minutes=60,
            description="",
            kind="import",
            external=(timebank.id, "t-1"),
        )
        db.session.commit()
        assert imported.external_platform_id == timebank.id
        sent = _move(people["anna"], people["bruno"], 30, "help")
        pushes = db.session.scalars(
            select(OutboxItem).where(
                OutboxItem.transaction_id == sent.id, OutboxItem.platform_id == timebank.id
            )
        ).all()
        assert [p.kind for p in pushes] == ["push_transfer"]  # the subscriber mirrored it
    log_in(client, people["anna"])
    page = _text(client.get("/account/hours"))
    assert "con qualcuno su TimeRepublik Da TimeRepublik · In viaggio verso Komunitin" in page
    assert "In viaggio verso TimeRepublik" in page

    with app.app_context():
        push = db.session.get(OutboxItem, pushes[0].id)
        push.state = "succeeded"
        db.session.commit()
    assert "Anche su TimeRepublik" in _text(client.get("/account/hours"))
    with app.app_context():
        push = db.session.get(OutboxItem, pushes[0].id)
        push.state = "dead"
        db.session.commit()
    assert "Non inviato a TimeRepublik" in _text(client.get("/account/hours"))


def test_a_timebank_not_read_yet_and_one_still_joining(app, client, people, timebank):
    log_in(client, people["anna"])
    balances = _balances(client)
    assert "TimeRepublik: non ancora letto" in balances
    assert "Komunitin: iscrizione in corso" in balances


def test_the_same_balance_there_is_said_with_the_time_of_the_reading(app, client, people, timebank):
    with app.app_context():
        _move(people["bruno"], people["anna"], 270, "help")
        _reading(timebank, "w-anna", 270)
    log_in(client, people["anna"])
    balances = _balances(client)
    assert "TimeRepublik: 4 h 30 min" in balances
    assert "Letto il 3/12/2026 alle 14:05." in balances
    assert "Uguale al saldo qui." in balances


def test_transfers_on_their_way_explain_a_lower_balance_there(app, client, people, timebank):
    with app.app_context():
        _move(people["bruno"], people["anna"], 60, "help")
        _move(people["carla"], people["anna"], 30, "help")  # both pushed, both still pending
        _reading(
            timebank,
            "w-anna",
            0,
            member_id=people["anna"].id,
            local_minutes=90,
            expected_remote_minutes=0,
            remote_minutes=0,
            difference_minutes=-90,
            pending_outbound_minutes=90,
            explanation="outbound_pending",
        )
    log_in(client, people["anna"])
    balances = _balances(client)
    assert "TimeRepublik segna 1 h 30 min in meno." in balances
    assert "2 trasferimenti sono ancora in viaggio verso TimeRepublik." in balances

    with app.app_context():  # they arrive; the reading is older than that
        for item in db.session.scalars(select(OutboxItem)):
            item.state = "succeeded"
        db.session.commit()
    assert "sono arrivati dopo la lettura" in _balances(client)


def test_an_unexplained_difference_says_we_are_checking(app, client, people, timebank):
    with app.app_context():
        _reading(
            timebank,
            "w-anna",
            30,
            member_id=people["anna"].id,
            local_minutes=0,
            expected_remote_minutes=0,
            remote_minutes=30,
            difference_minutes=30,
            explanation="unexplained",
        )
        db.session.get(Member, people["anna"].id).locale = "en"
        db.session.commit()
    log_in(client, people["anna"])
    page = _text(client.get("/account/hours"))
    assert "TimeRepublik shows 30 min more. We are checking." in page


def test_hours_recorded_since_the_reading_are_said_to_show_next_time(app, client, people, timebank):
    with app.app_context():
        _reading(timebank, "w-anna", 0)  # agreed at 0 when read
        _move(people["anna"], people["coop"], 60, "desk")
        for item in db.session.scalars(select(OutboxItem)):
            item.state = "succeeded"
        db.session.commit()
    log_in(client, people["anna"])
    balances = _balances(client)
    assert "TimeRepublik segna 1 h in più." in balances
    assert "Le tue ore sono cambiate dopo la lettura" in balances


def test_only_the_newest_reading_is_shown(app, client, people, timebank):
    with app.app_context():
        old = _reading(timebank, "w-anna", 10)
        old.started_at = old.finished_at = utcnow() - timedelta(days=1)
        db.session.commit()
        _reading(timebank, "w-anna", 0)
    log_in(client, people["anna"])
    assert "TimeRepublik: 0 min" in _balances(client)


# -- the reading comes from a real reconciliation against the sandbox timebank -------------------


def test_reconciliation_keeps_the_newest_reading_the_page_shows(app, client, people, tmp_path):
    sandbox = start_sandbox(tmp_path / "sandbox")
    try:
        with app.app_context():
            platform = add_platform(
                "sandbox",
                "timerepublik",
                sandbox.url,
                credentials={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
                options={"clearing_wallet_id": sandbox.clearing_wallet()},
                display_name="Banca di prova",
            )
            anna = db.session.get(Member, people["anna"].id)
            anna.email_verified_at = utcnow()
            db.session.commit()
        log_in(client, people["anna"])
        client.post("/account/timebanks/sandbox/connect", data={"csrf_token": csrf(client)})
        with app.app_context():
            make_worker(app, fork=False).work(burst=True)  # the registration
            _move(people["bruno"], people["anna"], 150, "help")
            make_worker(app, fork=False).work(burst=True)  # the transfer, pushed
            first = reconcile_platform(platform.id, trigger="manual")
            second = reconcile_platform(platform.id, trigger="manual")
            assert (first.state, second.state) == ("succeeded", "succeeded")
            kept = db.session.execute(select(RemoteBalance.run_id, RemoteBalance.minutes)).all()
            assert kept == [(second.id, 150)]  # the newest reading only
            read_at = format_datetime(second.finished_at, "it")
        balances = _balances(client)
        assert "Banca di prova: 2 h 30 min" in balances
        assert f"Letto il {read_at}." in balances
        assert "Uguale al saldo qui." in balances
    finally:
        sandbox.server.stop()
    assert sandbox.contract_errors == []

"""The admin page: login required, operators only, both languages, actions with CSRF."""

from __future__ import annotations

import re

import pytest

from gateway.db import db
from gateway.members.models import Member
from gateway.sync.models import OutboxItem
from tests.auth.oidc_helpers import log_in
from tests.factories import create_member


def test_visitors_go_to_login_and_members_are_refused(app, client, seeded):
    response = client.get("/admin")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=%2Fadmin"
    with app.app_context():
        member = create_member(email="nobody@example.org")
    log_in(client, member)
    refused = client.get("/admin")
    assert refused.status_code == 403
    assert refused.mimetype == "text/html"


@pytest.mark.parametrize(
    ("locale", "words"), [("it", ["in errore", "Riprova"]), ("en", ["failing", "Retry"])]
)
def test_overview_in_both_languages(app, operator, operator_client, seeded, locale, words):
    with app.app_context():
        db.session.get(Member, operator.id).locale = locale
        db.session.commit()
    html = operator_client.get("/admin").get_data(as_text=True)
    for word in words:
        assert word in html
    assert 'data-status="failing"' in html
    assert "<svg" in html
    assert "http://" not in html.split("<svg", 1)[1].split("</svg>")[0].replace(
        "http://www.w3.org/2000/svg", ""
    )
    # Every script, stylesheet and image comes from the gateway itself (no CDN).
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources
    assert all(not re.match(r"(?:https?:)?//", source) for source in sources), sources


def test_retry_and_skip_from_the_page(app, operator_client, seeded):
    with operator_client.session_transaction() as session:
        session["csrf"] = token = "p" * 43
    assert operator_client.post(f"/admin/outbox/{seeded['dead']}/retry").status_code == 400
    done = operator_client.post(
        f"/admin/outbox/{seeded['dead']}/retry", data={"csrf_token": token, "back": "//evil"}
    )
    assert done.status_code == 302
    assert done.headers["Location"] == f"/admin/outbox/{seeded['dead']}"
    operator_client.post(
        f"/admin/outbox/{seeded['pending']}/skip", data={"csrf_token": token, "reason": "dup"}
    )
    with app.app_context():
        assert db.session.get(OutboxItem, seeded["dead"]).state == "pending"
        assert db.session.get(OutboxItem, seeded["pending"]).state == "skipped"
    item = operator_client.get(f"/admin/outbox/{seeded['pending']}").get_data(as_text=True)
    assert "dup" in item


def test_lists_and_lookup_pages(app, operator_client, seeded):
    assert "unknown wallet w-9" in operator_client.get("/admin/callbacks").get_data(as_text=True)
    outbox = operator_client.get("/admin/outbox?state=dead").get_data(as_text=True)
    assert seeded["dead"][:8] in outbox
    assert operator_client.get("/admin/outbox?state=lost").status_code == 400
    found = operator_client.get("/admin/members?q=op@example.org").get_data(as_text=True)
    assert "op@example.org" in found
    assert operator_client.get("/admin/audit").status_code == 200

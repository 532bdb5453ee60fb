"""A subscription's platform row never shows where timebanks are meant."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.admin.models import AdminAction
from gateway.db import db, utcnow
from gateway.federation.models import Platform
from gateway.federation.platforms import add_platform, get_platform
from tests.auth.oidc_helpers import log_in
from tests.factories import bearer_headers, create_member

PASSWORD = "una frase lunga abbastanza"


@pytest.fixture
def names(app, subscribed):
    with app.app_context():
        add_platform(
            "tr",
            "timerepublik",
            "https://tr.example/api",
            credentials={"client_id": "gw", "client_secret": "s"},
            display_name="TimeRepublik",
        )
        db.session.commit()
        webhook = db.session.get(Platform, subscribed.platform_id)
        return {"timebank": "tr", "webhook": webhook.name, "webhook_title": webhook.display_name}


def test_members_see_only_timebanks(app, client, names):
    with app.app_context():
        member = create_member(
            email="rosa@example.org", password=PASSWORD, email_verified_at=utcnow()
        )
    log_in(client, member)
    page = client.get("/account/timebanks").get_data(as_text=True)
    assert "TimeRepublik" in page
    assert names["webhook"] not in page
    assert names["webhook_title"] not in page
    # Nor can a member join one by its name.
    assert client.get(f"/account/timebanks/{names['webhook']}/connect").status_code in (404, 405)


def test_no_callback_is_taken_for_a_subscription(client, names):
    refused = client.post(f"/callbacks/{names['webhook']}", data=b"{}")
    assert refused.status_code == 404
    assert refused.mimetype == "application/problem+json"


def test_reconciliation_leaves_subscriptions_alone(app, client, names):
    with app.app_context():
        assert get_platform(names["webhook"]) is None
        headers = bearer_headers("admin")
    refused = client.post(f"/admin/api/platforms/{names['webhook']}/reconcile", headers=headers)
    assert refused.status_code == 409
    assert refused.mimetype == "application/problem+json"
    with app.app_context():
        actions = db.session.scalars(select(AdminAction.action)).all()
        assert "platform.reconcile" not in actions


def test_the_overview_offers_reconciliation_for_timebanks_only(app, client, names):
    with app.app_context():
        operator = create_member(
            email="olga@example.org", password=PASSWORD, email_verified_at=utcnow(), is_admin=True
        )
        headers = bearer_headers("admin")
    listed = client.get("/admin/api/platforms", headers=headers).json["items"]
    assert {p["name"]: p["is_timebank"] for p in listed} == {
        names["timebank"]: True,
        names["webhook"]: False,
    }
    log_in(client, operator)
    page = client.get("/admin").get_data(as_text=True)
    assert f"/admin/platforms/{names['timebank']}/reconcile" in page
    assert f"/admin/platforms/{names['webhook']}/reconcile" not in page

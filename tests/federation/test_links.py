"""The links table: a remote account belongs to one live link at a time."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gateway.db import db
from gateway.federation.models import PlatformLink
from gateway.federation.platforms import add_platform
from tests.factories import create_member


def _link(platform, state: str, member_id: str = "r-1", wallet_id: str = "w-1") -> PlatformLink:
    link = PlatformLink(
        member_id=create_member().id,
        platform_id=platform.id,
        remote_member_id=member_id,
        remote_wallet_id=wallet_id,
        state=state,
    )
    db.session.add(link)
    return link


def test_an_erased_link_keeps_its_ids_without_holding_the_account(db_session):
    platform = add_platform("tr", "timerepublik", "https://tr.example/api")
    _link(platform, "erased")
    _link(platform, "erased")
    _link(platform, "active")
    db.session.commit()
    states = db.session.scalars(select(PlatformLink.state).order_by(PlatformLink.state)).all()
    assert states == ["active", "erased", "erased"]


@pytest.mark.parametrize(
    ("member_id", "wallet_id"), [("r-1", "w-other"), ("r-other", "w-1")], ids=["member", "wallet"]
)
@pytest.mark.parametrize("state", ["pending", "active", "erasing", "failed"])
def test_two_live_links_never_share_an_account(db_session, state, member_id, wallet_id):
    platform = add_platform("tr", "timerepublik", "https://tr.example/api")
    _link(platform, "active")
    db.session.commit()
    _link(platform, state, member_id, wallet_id)
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()

"""Ledger fixtures: accounts of members, an organization and a platform's clearing."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from gateway.db import db
from gateway.ledger import services as ledger
from gateway.ledger.models import Account, Entry
from tests.factories import create_member


@dataclass
class Accounts:
    """Account ids of a small community: two members, a cooperative and a platform's clearing."""

    anna: str
    bruno: str
    coop: str
    clearing: str


def entries_sum(account_id: str) -> int:
    """The sum of an account's entries, straight from the table."""
    return db.session.scalar(
        select(func.coalesce(func.sum(Entry.amount_minutes), 0)).where(
            Entry.account_id == account_id
        )
    )


def cached_balance(account_id: str) -> int:
    """The balance column as stored (bypassing the identity map)."""
    return db.session.scalar(select(Account.balance_minutes).where(Account.id == account_id))


@pytest.fixture
def accounts(db_session) -> Accounts:
    """Committed accounts: members at the default limit (-600), a cooperative, a clearing."""
    anna, bruno = create_member(), create_member()
    coop = ledger.create_organization(name="Cooperativa Il Grillo", municipio=4)
    result = Accounts(
        anna=ledger.account_for_member(anna.id).id,
        bruno=ledger.account_for_member(bruno.id).id,
        coop=ledger.account_for_organization(coop.id).id,
        clearing=ledger.clearing_account("platform-1").id,
    )
    db_session.commit()
    return result

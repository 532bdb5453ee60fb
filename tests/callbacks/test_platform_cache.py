"""The per-process cache of platforms and their secrets: fast, and never stale across processes.

Two app instances on one database stand for two gunicorn processes: each has its own cache.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, select

from gateway.db import db, utcnow
from gateway.federation.models import Platform, WebhookSecret
from gateway.federation.platforms import (
    add_webhook_secret,
    callback_platform,
    revoke_webhook_secret,
)
from tests.callbacks.conftest import OTHER_SECRET, SECRET, signed, transfer_event


@pytest.fixture
def two_processes(make_app, platform):
    """Two more apps on the test's database: two processes, each with its own cache."""
    return make_app(), make_app()


def _post(app, secret: str) -> int:
    body, headers = signed(transfer_event("t1"), secret=secret)
    return app.test_client().post("/callbacks/tr", data=body, headers=headers).status_code


def _change(app, change) -> None:
    with app.app_context():
        change(db.session.scalar(select(Platform).where(Platform.name == "tr")))
        db.session.commit()


def test_a_secret_revoked_in_another_process_is_refused_at_once(two_processes):
    first, second = two_processes
    _change(second, lambda p: add_webhook_secret(p, OTHER_SECRET))
    assert _post(first, OTHER_SECRET) == 202  # now cached by the first process
    _change(second, lambda p: revoke_webhook_secret(p, OTHER_SECRET[-4:]))
    assert _post(first, OTHER_SECRET) == 401
    assert _post(first, SECRET) == 202


def test_a_secret_added_in_another_process_verifies_at_once(two_processes):
    first, second = two_processes
    assert _post(first, SECRET) == 202
    assert _post(first, OTHER_SECRET) == 401
    _change(second, lambda p: add_webhook_secret(p, OTHER_SECRET))
    assert _post(first, OTHER_SECRET) == 202


def test_disabling_in_another_process_refuses_at_once(two_processes):
    first, second = two_processes
    assert _post(first, SECRET) == 202

    def disable(platform):
        platform.enabled = False

    _change(second, disable)
    assert _post(first, SECRET) == 404


def test_a_secret_row_changed_directly_still_moves_the_version(two_processes):
    # Not through revoke_webhook_secret (an admin tool, a shell): the flush hook moves it.
    first, second = two_processes
    assert _post(first, SECRET) == 202
    with second.app_context():
        row = db.session.scalar(select(WebhookSecret))
        row.revoked_at = utcnow()
        db.session.commit()
    assert _post(first, SECRET) == 401


def test_versions_always_move_forward(app, platform):
    with app.app_context():
        row = db.session.get(Platform, platform.id)
        # A clock behind the stored version (set back, or another machine's) must still move it.
        row.updated_at = utcnow() + timedelta(hours=1)
        db.session.commit()
        before = row.updated_at
        add_webhook_secret(row, OTHER_SECRET)
        db.session.commit()
        assert db.session.get(Platform, platform.id).updated_at > before


def test_a_cached_platform_reads_no_secrets_and_decrypts_nothing(app, platform):
    statements: list[str] = []
    engine = app.extensions["db"].engine

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement)

    assert _post(app, SECRET) == 202
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert _post(app, SECRET) == 202
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert not [s for s in statements if "platform_webhook_secrets" in s]
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1


def test_unknown_and_disabled_platforms_are_none(app, platform):
    with app.app_context():
        assert callback_platform("nobody") is None
        cached = callback_platform("tr")
        assert cached is not None
        assert cached.secrets == (SECRET,)
        assert cached.platform.id == platform.id
        db.session.get(Platform, platform.id).enabled = False
        db.session.commit()
        assert callback_platform("tr") is None

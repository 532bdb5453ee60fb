"""``schemas`` stands on its own: importing every schema module loads nothing of ``gateway``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from marshmallow import ValidationError

from gateway.sync.models import OutboxItem
from schemas.admin import CallbackQuery, OutboxFilter
from schemas.vocabulary import INBOX_STATES, OUTBOX_KINDS, OUTBOX_STATES

ROOT = Path(__file__).resolve().parents[1]

IMPORT_SCHEMAS = textwrap.dedent(
    """
    import importlib, pkgutil, sys
    import schemas
    for module in pkgutil.walk_packages(schemas.__path__, "schemas."):
        importlib.import_module(module.name)
    print(" ".join(sorted(n for n in sys.modules if n == "gateway" or n.startswith("gateway."))))
    """
)


def test_importing_every_schema_loads_no_gateway_module():
    # A fresh interpreter: this test process has imported the gateway long ago.
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_SCHEMAS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_the_models_and_the_admin_filters_share_one_vocabulary():
    # The tables' check constraints and the filters are built from the same words.
    assert OutboxItem.__table__.c.state.type.length >= max(map(len, OUTBOX_STATES))
    constraints = {
        c.name: str(c.sqltext) for c in OutboxItem.__table__.constraints if hasattr(c, "sqltext")
    }
    assert all(repr(state) in constraints["ck_outbox_state"] for state in OUTBOX_STATES)
    assert all(repr(kind) in constraints["ck_outbox_kind"] for kind in OUTBOX_KINDS)
    assert OutboxFilter().load({"state": "dead", "kind": "push_transfer"})["state"] == "dead"
    with pytest.raises(ValidationError) as caught:
        OutboxFilter().load({"state": "lost", "kind": "send_flowers"})
    assert set(caught.value.messages) == {"state", "kind"}
    for state in INBOX_STATES:
        assert CallbackQuery().load({"state": state})["state"] == state
    with pytest.raises(ValidationError):
        CallbackQuery().load({"state": "half-done"})

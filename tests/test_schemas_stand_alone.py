"""``schemas`` stands on its own: importing every schema module loads nothing of ``gateway``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from marshmallow import ValidationError

from schemas.admin import CallbackQuery, OutboxQuery

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


def test_admin_filters_accept_only_the_words_they_are_given():
    outbox = OutboxQuery(states=("pending", "dead"), kinds=("push_transfer",))
    assert outbox.load({"state": "dead", "kind": "push_transfer"})["state"] == "dead"
    with pytest.raises(ValidationError) as caught:
        outbox.load({"state": "succeeded", "kind": "erase_member"})
    assert set(caught.value.messages) == {"state", "kind"}
    assert CallbackQuery(states=("parked",)).load({})["state"] == "parked"
    with pytest.raises(ValidationError):
        CallbackQuery(states=("parked",)).load({"state": "received"})

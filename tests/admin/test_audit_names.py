"""Every action the code writes to the audit log has a name in both languages: the audit page
and the item page translate each row's action, and a missing name would fail the whole page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import gateway

PACKAGE = Path(gateway.__file__).parent
# An audit row's action is the first string literal of an ``_audit(...)`` call, after the
# actor where the helper takes one.
AUDIT_CALL = re.compile(r'_audit\(\s*(?:[a-z_]+,\s*)?"([a-z_.]+)"')


def _written_actions() -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        found.update(AUDIT_CALL.findall(path.read_text()))
    return found


def test_every_audited_action_is_named_in_both_languages():
    actions = _written_actions()
    assert {"outbox.retry", "member.disable", "member.erase"} <= actions
    catalog = json.loads((PACKAGE / "translations" / "admin.json").read_text())
    for action in sorted(actions):
        names = catalog.get(f"admin.action.{action}")
        assert names is not None, f"admin.action.{action} is missing from admin.json"
        assert set(names) == {"it", "en"}

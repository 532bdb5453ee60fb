"""The alerting rules and the dashboard: valid, unit-tested, and about metrics that exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gateway.db import db
from gateway.federation.platforms import add_platform
from gateway.jobs import make_worker
from gateway.schedule import record_heartbeat

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "alerts.test.yml"
DASHBOARD = DEPLOY / "grafana" / "gateway-dashboard.json"
# A histogram is exported as these series; PromQL names them, /metrics declares the family.
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not installed (apt-get install prometheus): rules not run here")
    return path


def test_rules_are_valid():
    result = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_fire_when_they_should_and_only_then():
    result = subprocess.run(
        [_promtool(), "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        check=False,
        cwd=RULE_TESTS.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_unit_tested():
    alerts = {
        rule["alert"]
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
    }
    tested = {
        case["alertname"]
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts - tested == set(), "alerts never shown firing in alerts.test.yml"


def _names_in(expressions: list[str]) -> set[str]:
    names = set()
    for expr in expressions:
        for name in re.findall(r"\bgateway_[a-z_]+", expr):
            for suffix in HISTOGRAM_SUFFIXES:
                name = name.removesuffix(suffix)
            names.add(name)
    return names


def _exported(app) -> set[str]:
    """The metric families /metrics serves with a platform, a worker and a heartbeat present."""
    with app.app_context():
        add_platform("tr", "timerepublik", "https://tr.example/api", credentials={"id": "a"})
        db.session.commit()
        record_heartbeat()
    worker = make_worker(app, name="alerts-test")
    worker.register_birth()
    try:
        text = app.test_client().get("/metrics").get_data(as_text=True)
    finally:
        worker.register_death()
    return set(re.findall(r"^# TYPE (gateway_[a-z_]+) ", text, flags=re.MULTILINE))


def test_rules_and_dashboard_name_only_metrics_the_gateway_exports(app):
    rules = [
        rule["expr"]
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
    ]
    panels = json.loads(DASHBOARD.read_text())["panels"]
    queries = [target["expr"] for panel in panels for target in panel["targets"]]
    used = _names_in(rules + queries)
    assert used, "no gateway metric found in the rules"
    assert used - _exported(app) == set()

"""The deploy kit, checked statically (this machine runs no container engine): the compose file
and the Kubernetes manifests against their published schemas, offline; the image's start command
against the README's."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S_VERSION = "1.30.0"


def _documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_compose_file_matches_the_compose_specification():
    # The Compose Specification's schema, as vendored by check-jsonschema (no network).
    schema_file = resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    schema = json.loads(schema_file.read_text())
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    jsonschema.validate(compose, schema)
    services = compose["services"]
    assert {"web", "worker", "scheduler", "postgres", "redis", "sandbox", "migrate"} <= set(
        services
    )
    assert services["worker"]["deploy"]["replicas"] >= 2
    # The sandbox has no real security: its own image, and only when asked for by profile.
    assert services["sandbox"]["build"]["dockerfile"] == "deploy/sandbox.Dockerfile"
    assert services["sandbox"]["profiles"] == ["sandbox"]
    gateway_services = {"web", "worker", "scheduler", "migrate"}
    assert {services[name]["build"]["dockerfile"] for name in gateway_services} == {
        "deploy/Dockerfile"
    }


def test_a_broken_compose_file_is_caught():
    schema_file = resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    schema = json.loads(schema_file.read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"services": {"web": {"ports": "8000"}}}, schema)


MANIFESTS = sorted((DEPLOY / "k8s").glob("*.yaml"))


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_kubernetes_manifests_validate(path):
    for document in _documents(path):
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def test_kubernetes_kit_is_complete():
    kinds = [
        (doc["kind"], doc["metadata"]["name"]) for path in MANIFESTS for doc in _documents(path)
    ]
    for expected in (
        ("Deployment", "gateway-web"),
        ("Service", "gateway-web"),
        ("HorizontalPodAutoscaler", "gateway-web"),
        ("Deployment", "gateway-worker"),
        ("Deployment", "gateway-scheduler"),
        ("Job", "gateway-migrate"),
    ):
        assert expected in kinds
    (scheduler,) = [d for d in _documents(DEPLOY / "k8s/scheduler.yaml")]
    assert scheduler["spec"]["replicas"] == 1
    assert scheduler["spec"]["strategy"]["type"] == "Recreate"


def test_a_broken_manifest_is_caught():
    broken = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"replicas": "two", "selector": {}, "template": {}},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def _dockerfile_command() -> list[str]:
    text = (DEPLOY / "Dockerfile").read_text()
    (line,) = [line for line in text.splitlines() if line.startswith("CMD ")]
    return json.loads(line[4:])


def test_image_starts_with_the_readme_command():
    readme = (ROOT / "README.md").read_text()
    production = readme.split("## Production", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"^gunicorn -c deploy/gunicorn\.conf\.py \"([^\"]+)\"", production, re.M)
    assert match, "the README's production section names the gunicorn command"
    command = _dockerfile_command()
    assert command[:2] == ["gunicorn", "-c"]
    assert command[2].endswith("gunicorn.conf.py")
    assert command[3] == match.group(1)
    text = (DEPLOY / "Dockerfile").read_text()
    assert "USER gateway" in text
    assert "HEALTHCHECK" in text
    assert text.count("FROM ") >= 2  # multi-stage

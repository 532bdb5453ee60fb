"""The locks CI and the image install from agree with pyproject.toml, each other and pre-commit.

A dependency added to pyproject.toml without `make lock` would be missing from every install
made from the locks: these tests name it and the command that fixes it.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
DEV_LOCK = ROOT / "requirements" / "dev.lock"
RUNTIME_LOCK = ROOT / "requirements" / "runtime.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def _pins(lock: Path) -> dict[str, str]:
    return {canonicalize_name(name): version for name, version in PIN.findall(lock.read_text())}


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _unlocked(requirements: list[str], pins: dict[str, str]) -> list[str]:
    missing = []
    for line in requirements:
        requirement = Requirement(line)
        version = pins.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            missing.append(f"{line} (locked: {version or 'no'})")
    return missing


@pytest.mark.parametrize(
    ("lock", "extras"), [(RUNTIME_LOCK, []), (DEV_LOCK, ["dev"])], ids=["runtime", "dev"]
)
def test_every_dependency_is_locked_at_a_version_pyproject_allows(lock, extras):
    project = _project()
    wanted = project["dependencies"] + [
        line for extra in extras for line in project["optional-dependencies"][extra]
    ]
    missing = _unlocked(wanted, _pins(lock))
    assert not missing, f"{lock.name} is out of date, run `make lock`: {missing}"


def test_the_development_tools_need_nothing_the_dev_lock_lacks():
    # `make` installs devtools/ with --no-deps: what it imports must come from the dev lock.
    devtools = tomllib.loads((ROOT / "devtools" / "pyproject.toml").read_text())["project"]
    wanted = [
        line
        for line in devtools["dependencies"]
        if canonicalize_name(Requirement(line).name) != canonicalize_name(_project()["name"])
    ]
    assert wanted, "devtools/pyproject.toml names what it imports"
    missing = _unlocked(wanted, _pins(DEV_LOCK))
    assert not missing, f"add them to pyproject.toml's dev extra and run `make lock`: {missing}"


def test_the_runtime_lock_pins_what_ci_tests():
    dev = _pins(DEV_LOCK)
    runtime = _pins(RUNTIME_LOCK)
    differ = {name: version for name, version in runtime.items() if dev.get(name) != version}
    assert not differ, f"run `make lock`: the runtime lock differs from the dev lock: {differ}"


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, DEV_LOCK], ids=["runtime", "dev"])
def test_every_pin_has_its_hashes(lock):
    # A requirement's block runs from its pin to the next pin; pip --require-hashes needs them.
    blocks = re.split(r"\n(?=[A-Za-z0-9])", lock.read_text())
    unhashed = [b.split()[0] for b in blocks if PIN.match(b) and "--hash=sha256:" not in b]
    assert not unhashed


def test_pre_commit_runs_the_locked_ruff():
    config = (ROOT / ".pre-commit-config.yaml").read_text()
    versions = set(re.findall(r"ruff==([^\"'\s\]]+)", config))
    assert versions == {_pins(DEV_LOCK)["ruff"]}, "set the hooks' ruff to the lock's version"

"""What ships: the wheel and the image carry the gateway, its connectors and schemas, and none
of the development tools (the sandbox timebank, a partner with no real security, and the demo
site), which live in ``devtools/`` as a distribution of their own."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEV_TOOL_PACKAGES = ("gateway_sandbox", "gateway_demo_site")
SHIPPED = {"gateway", "connectors", "schemas"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    # Built from a copy of the whole tree, development tools included, as `docker build` or a
    # release would: what the root pyproject picks is what is tested, and the work tree stays
    # clean. The venv's setuptools builds it (no index needed): the one the lock pins.
    pytest.importorskip("setuptools", reason="the dev lock installs setuptools on Python < 3.13")
    scratch = tmp_path_factory.mktemp("wheel")
    source = scratch / "src"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "var", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"
        ),
    )
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(scratch / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (path,) = (scratch / "dist").glob("community_gateway-*.whl")
    with zipfile.ZipFile(path) as opened:
        yield opened


def test_the_wheel_carries_only_the_gateway_connectors_and_schemas(wheel):
    names = wheel.namelist()
    tops = {name.split("/")[0] for name in names if ".dist-info/" not in name}
    assert tops == SHIPPED
    assert "gateway/cli.py" in names
    assert any(name.startswith("gateway/templates/members/") for name in names)
    assert any(name.startswith("connectors/timerepublik/contract/") for name in names)


def test_the_wheel_carries_no_sandbox_or_demo_site(wheel):
    names = wheel.namelist()
    dev = [
        name
        for name in names
        if any(part in name for part in ("sandbox", "demo_site", "templates/demo", "demo.json"))
    ]
    assert dev == []
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "[gateway.commands]" not in text
    assert not any(package in text for package in DEV_TOOL_PACKAGES)


def test_the_image_installs_nothing_of_the_development_tools():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    copied = {
        source
        for line in dockerfile.splitlines()
        if line.startswith("COPY ") and "--from=" not in line
        for source in line.split()[1:-1]
    }
    assert copied == {
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "gateway",
        "connectors",
        "schemas",
        "requirements/runtime.lock",
        "deploy/gunicorn.conf.py",
    }
    for word in ("devtools", *DEV_TOOL_PACKAGES, "community-gateway-devtools"):
        assert word not in dockerfile
    # The image installs the wheel alone, with --no-deps: nothing can pull the tools in.
    assert "pip install --no-cache-dir --no-deps /wheels/*.whl" in dockerfile

"""What the browser tests share: an accessibility scan with axe-core, the npm package.

axe-core is installed from ``tests/browser/axe/package-lock.json`` the first time a test needs
it (``npm ci``). It is evaluated through the DevTools protocol, which the pages' CSP (no inline
script) does not govern, so the pages are scanned exactly as members get them.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

AXE_DIR = Path(__file__).parent / "axe"
AXE_SCRIPT = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.0, 2.1 and 2.2 at levels A and AA, plus axe's best practices.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
BLOCKING = ("serious", "critical")


@pytest.fixture(scope="session")
def axe_source() -> str:
    """The axe-core script, installed with npm on first use."""
    if not AXE_SCRIPT.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm not installed: the accessibility scan needs the axe-core package")
        # Run in the folder rather than with --prefix, which would also move npm's global
        # configuration (where a machine keeps its registry's certificate authority).
        installed = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=AXE_DIR,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert installed.returncode == 0, f"npm ci failed:\n{installed.stderr[-3000:]}"
    return AXE_SCRIPT.read_text()


def _describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        targets = [" ".join(node["target"]) for node in violation["nodes"]][:5]
        lines.append(f"{violation['impact']}: {violation['id']} ({violation['help']}) at {targets}")
    return "\n".join(lines)


@pytest.fixture
def assert_accessible(axe_source: str) -> Callable[..., None]:
    """Scan a Playwright page with axe-core; fail on any serious or critical violation."""

    def scan(page: Any, label: str = "") -> None:
        page.evaluate(axe_source)
        result = page.evaluate(
            "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", AXE_TAGS
        )
        blocking = [v for v in result["violations"] if v["impact"] in BLOCKING]
        where = label or page.url
        assert not blocking, f"accessibility violations on {where}:\n{_describe(blocking)}"

    return scan

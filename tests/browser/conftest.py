"""What the browser tests share: an accessibility scan with axe-core, the npm package, and a
world of servers (the sandbox timebank, the gateway, the demo site) for a module of journeys.

axe-core is installed from ``tests/browser/axe/package-lock.json`` the first time a test needs
it (``npm ci``). It is evaluated through the DevTools protocol, which the pages' CSP (no inline
script) does not govern, so the pages are scanned exactly as members get them.

``visit`` scans a page at a desktop and a phone width. With ``BROWSER_SCREENSHOTS`` naming a
folder, it also saves a full-page screenshot of each, for a person to look at.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask

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
        if not page.evaluate("typeof axe !== 'undefined'"):  # once per document
            page.evaluate(axe_source)
        # Violations only: what the assertion reads, and axe's quickest way to the answer.
        result = page.evaluate(
            "tags => axe.run(document, "
            "{runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
            AXE_TAGS,
        )
        blocking = [v for v in result["violations"] if v["impact"] in BLOCKING]
        where = label or page.url
        assert not blocking, f"accessibility violations on {where}:\n{_describe(blocking)}"

    return scan


# A desktop and a phone (an iPhone SE is 375 CSS pixels wide).
WIDTHS = ((1280, 800), (375, 740))
SCREENSHOTS = os.environ.get("BROWSER_SCREENSHOTS")


@pytest.fixture
def visit(assert_accessible: Callable[..., None]) -> Callable[..., None]:
    """Check the page on screen at every width: no serious accessibility violation, no
    horizontal scrolling; a screenshot of each when ``BROWSER_SCREENSHOTS`` is set."""

    def check(page: Any, label: str) -> None:
        language = page.evaluate("document.documentElement.lang")
        for width, height in WIDTHS:
            page.set_viewport_size({"width": width, "height": height})
            assert_accessible(page, f"{label} ({language}, {width} px)")
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{label} ({language}) scrolls sideways at {width} px"
            if SCREENSHOTS:
                name = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
                folder = Path(SCREENSHOTS)
                folder.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=folder / f"{name}-{language}-{width}.png", full_page=True)
        page.set_viewport_size({"width": WIDTHS[0][0], "height": WIDTHS[0][1]})

    return check


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class World:
    """The servers of a module of browser journeys."""

    app: Flask
    gateway: str
    demo: str
    sandbox: str


@pytest.fixture(scope="module")
def journey_world(
    database_server: dict, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """The sandbox timebank, the gateway and the demo site on loopback ports, shared by the
    tests of one module (each test makes its own members): starting them is most of what a
    browser test costs. Its own database and an emptied Redis, as every test has."""
    from gateway import create_app
    from gateway.db import db
    from gateway.devsetup import DEMO_CLIENT_ID, SANDBOX_CREDENTIALS, ensure_demo_client
    from gateway.federation.platforms import add_platform
    from gateway_demo_site.app import create_demo_app
    from gateway_sandbox import SandboxServer, create_sandbox_app
    from tests.conftest import TEST_SECRET, _empty_tables
    from tests.live import LiveServer

    folder = tmp_path_factory.mktemp("journeys")
    if database_server["kind"] == "sqlite":
        shutil.copyfile(database_server["template"], folder / "gateway.db")
        database_url = f"sqlite:///{folder / 'gateway.db'}"
    else:
        database_url = database_server["url"]
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    sandbox = SandboxServer(create_sandbox_app({"SANDBOX_DATA_DIR": str(folder / "sb")})).start()
    port, demo_port = free_port(), free_port()
    app = create_app(
        {
            "GATEWAY_ENV": "testing",
            "TESTING": True,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": TEST_SECRET,
            "GATEWAY_DATA_DIR": str(folder / "data"),
            "QUEUE_NAME": f"test-{uuid.uuid4().hex[:8]}",
            "GATEWAY_BASE_URL": f"http://127.0.0.1:{port}",
            "LOGIN_RATE_LIMIT_PER_ACCOUNT": 3,
        }
    )
    with app.app_context():
        add_platform(
            "sandbox",
            "timerepublik",
            sandbox.url,
            credentials=SANDBOX_CREDENTIALS,
            options={"clearing_wallet_id": "w_clearing"},
            display_name="Banca del tempo di prova",
        )
        db.session.commit()
    demo_url = f"http://127.0.0.1:{demo_port}"
    secret = ensure_demo_client(app, demo_url)
    try:
        with LiveServer(app, port) as gateway:
            demo = create_demo_app(gateway.url, DEMO_CLIENT_ID, secret, demo_url)
            with LiveServer(demo, demo_port):
                yield World(app, gateway.url, demo_url, sandbox.url)
    finally:
        sandbox.stop()
        app.extensions["db"].dispose()
        app.extensions["redis"].close()
        store.flushdb()
        store.close()
        if database_server["kind"] == "postgresql":
            _empty_tables(database_server["engine"])

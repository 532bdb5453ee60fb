"""docs/integrating.md runs: every `sh` block, in order, in one shell, against `gateway run`.

The guide is what a website's developer follows from a clone; a snippet that stops working
must fail the build, not a reader.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "integrating.md"
_BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.embedded,
    pytest.mark.skipif(
        shutil.which("jq") is None or shutil.which("curl") is None,
        reason="the guide's snippets need curl and jq (Debian packages curl, jq)",
    ),
]


def guide_script() -> str:
    """The guide's shell blocks joined, stopping at the first failing command."""
    blocks = _BLOCK.findall(GUIDE.read_text(encoding="utf-8"))
    return "set -euo pipefail\n" + "\n".join(blocks)


def test_the_guide_has_snippets_for_every_step():
    text = GUIDE.read_text(encoding="utf-8")
    assert len(_BLOCK.findall(text)) >= 10
    for step in (
        "clients create",
        "grant_type=client_credentials",
        "/organizations",
        "/transactions",
        "Idempotency-Key",
        "/reversal",
        "/members/",
        "webhooks add",
    ):
        assert step in guide_script(), step


@pytest.fixture
def served_gateway(tmp_path, unused_port_block):
    """`gateway run` on embedded defaults (what `make run` starts), and its environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["GATEWAY_DATA_DIR"] = str(tmp_path / "var")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    base = f"http://127.0.0.1:{unused_port_block}"
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--port", str(unused_port_block)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"`gateway run` never got ready:\n{process.communicate()[0]}")
            try:
                if requests.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        yield base, env
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def test_the_guide_runs_from_registration_to_reversal(served_gateway, tmp_path):
    base, env = served_gateway
    work = tmp_path / "site"
    work.mkdir()
    result = subprocess.run(
        ["bash", "-c", guide_script()],
        cwd=work,
        env={**env, "GATEWAY": base},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    out = result.stdout
    # What a reader is told to expect, step by step.
    assert '"active":true' in out
    assert "Anna's balance: -240 minutes" in out
    assert '{"kind":"desk","amount_minutes":-180}' in out
    assert '"code":"validation","errors":{"minutes"' in out
    desk_id = json.loads((work / "desk.json").read_text())["id"]
    assert f"replayed: {desk_id}" in out
    assert "Anna's balance is still: -240 minutes" in out
    assert "insufficient_scope" in out
    assert 'scope="admin"' in out
    assert "Anna's balance after the reversal: -60 minutes" in out
    # Step 9: the help exchange posted after subscribing arrives, verified by the library.
    assert "received transaction.posted" in out
    assert "secret" not in result.stderr.lower()

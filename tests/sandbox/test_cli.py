"""`gateway sandbox`: the command starts a real server and stops on a signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import requests
from click.testing import CliRunner

from gateway.cli import main


def test_help_names_the_options():
    result = CliRunner().invoke(main, ["sandbox", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--data-dir"):
        assert option in result.output


def test_the_command_serves_until_interrupted(tmp_path, unused_port):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["GATEWAY_DATA_DIR"] = str(tmp_path / "var")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway",
            "sandbox",
            "--port",
            str(unused_port),
            "--data-dir",
            str(tmp_path / "sandbox"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{unused_port}/_sandbox/health"
    try:
        deadline = time.monotonic() + 20
        health = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                health = requests.get(url, timeout=1).json()
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert health == {"status": "ok", "clearing_wallet_id": "w_clearing"}
        assert (tmp_path / "sandbox" / "sandbox.db").exists()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            stdout, _ = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, _ = process.communicate()
    assert process.returncode == 0
    assert f"http://127.0.0.1:{unused_port}" in stdout


def test_a_bad_setting_is_one_line_and_exit_2(tmp_path):
    env = {**os.environ, "SANDBOX_ERROR_RATE": "lots", "GATEWAY_DATA_DIR": str(tmp_path)}
    env.pop("REDIS_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "sandbox", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Error: Sandbox fault settings: error_rate must be a number, not 'lots'."
    ]

"""The `gateway` command: start-up errors, migrations, and the all-in-one run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from gateway.cli import main


def _gateway(
    args: list[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"GATEWAY_DATA_DIR": str(tmp_path / "var"), **extra})
    return env


def test_unreachable_redis_is_one_line_and_exit_2(tmp_path, unused_port):
    env = _clean_env(tmp_path, REDIS_URL=f"redis://127.0.0.1:{unused_port}/0")
    result = _gateway(["worker", "--burst"], env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"Error: Cannot reach Redis at redis://127.0.0.1:{unused_port}/0")


def test_unreachable_database_is_one_line_and_exit_2(tmp_path, unused_port, redis_url):
    env = _clean_env(
        tmp_path,
        REDIS_URL=redis_url,
        DATABASE_URL=f"postgresql://gw:topsecret@127.0.0.1:{unused_port}/nothing",
    )
    result = _gateway(["web"], env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: Cannot reach the database at postgresql+psycopg://gw:***@")
    assert "topsecret" not in result.stderr


def test_malformed_database_url_is_one_line_and_exit_2(tmp_path):
    result = _gateway(["worker", "--burst"], _clean_env(tmp_path, DATABASE_URL="nonsense"))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "Error: DATABASE_URL is not a database URL: 'nonsense' "
        "(expected sqlite:///path or postgresql://user@host/db)."
    )


def test_db_upgrade_and_current(tmp_path, redis_url):
    env = _clean_env(tmp_path, REDIS_URL=redis_url)
    assert _gateway(["db", "current"], env).stdout.startswith("empty: behind")
    upgraded = _gateway(["db", "upgrade"], env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert _gateway(["db", "current"], env).stdout.strip().endswith(": up to date")


def test_database_commands_start_no_redis(tmp_path):
    result = _gateway(["db", "upgrade"], _clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "var" / "redis").exists()


def test_flask_cli_offers_the_same_commands(runner):
    result = runner.invoke(args=["db", "current"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


def test_help_lists_every_command():
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["--help"])
    for command in ("run", "web", "worker", "scheduler", "db"):
        assert f"  {command} " in result.output


def _as_a_background_job() -> None:
    # What a non-interactive shell does to a command started with `&`.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.slow
@pytest.mark.embedded
@pytest.mark.parametrize("background", [False, True], ids=["foreground", "background-job"])
def test_run_starts_everything_and_ctrl_c_stops_it(tmp_path, unused_port_block, background):
    """`gateway run` on embedded defaults: ready, then Ctrl-C leaves no process behind."""
    unused_port = unused_port_block
    env = _clean_env(tmp_path)
    env.pop("TEST_DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--port", str(unused_port)],
        preexec_fn=_as_a_background_job if background else None,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{unused_port}"
    try:
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = requests.get(f"{base}/readyz", timeout=1)
                if ready.status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        if ready is None or ready.status_code != 200:
            process.terminate()
            pytest.fail(f"`gateway run` never got ready:\n{process.communicate(timeout=30)[0]}")
        assert requests.get(f"{base}/healthz", timeout=2).status_code == 200
        redis_pid = int((tmp_path / "var" / "redis" / "redis.pid").read_text())
        children = subprocess.run(
            ["pgrep", "-P", str(process.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        assert redis_pid in map(int, children)
        assert len(children) == 6  # embedded redis, sandbox, worker, scheduler, web, demo site
        # The demo site starts beside the web server, not after it: under load it may be later.
        demo = None
        while time.monotonic() < deadline and demo is None:
            try:
                demo = requests.get(f"http://127.0.0.1:{unused_port + 2}/", timeout=2)
            except requests.ConnectionError:
                time.sleep(0.2)
        assert demo is not None, "the demo site never answered"
        assert demo.status_code == 200
        assert "/login" in demo.text
        # The supervisor polls health every 0.2 s before it announces the URLs.
        time.sleep(1.0)
    finally:
        if process.returncode is None:  # else a failure above stopped it already
            process.send_signal(signal.SIGINT)
            try:
                output, _ = process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.terminate()  # the supervisor stops its children on SIGTERM too
                output, _ = process.communicate(timeout=30)
                pytest.fail(f"Ctrl-C did not stop `gateway run`:\n{output}")
    assert process.returncode == 0, output
    assert "Gateway ready at" in output
    for pid in map(int, children):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


# The gateway as installed without the development tools (a wheel, the image): the
# distribution that adds `sandbox` and `demo-site` is not seen.
WITHOUT_DEV_TOOLS = (
    "import sys; import gateway.dev_tools as tools; tools.added_commands = lambda: {}; "
    "from gateway.cli import main; main(sys.argv[1:], prog_name='gateway')"
)


def test_the_development_tools_add_their_commands():
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["--help"])
    assert "  sandbox " in result.output
    assert "  demo-site " in result.output


@pytest.mark.parametrize("command", ["sandbox", "demo-site"])
def test_a_missing_development_tool_says_how_to_install_it(tmp_path, command):
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_DEV_TOOLS, command, "--port", "0"],
        env=_clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: `gateway {command}` is ")
    assert "a development tool, not installed here" in line
    assert "pip install -e ./devtools" in line
    listed = subprocess.run(
        [sys.executable, "-c", WITHOUT_DEV_TOOLS, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout
    assert "  run " in listed
    assert f"  {command} " not in listed


@pytest.mark.slow
@pytest.mark.embedded
def test_run_without_the_development_tools_starts_the_gateway_alone(tmp_path, unused_port_block):
    env = _clean_env(tmp_path)
    env.pop("TEST_DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-c", WITHOUT_DEV_TOOLS, "run", "--port", str(unused_port_block)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{unused_port_block}"
    try:
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = requests.get(f"{base}/readyz", timeout=1)
                if ready.status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        if ready is None or ready.status_code != 200:
            process.terminate()
            pytest.fail(f"`gateway run` never got ready:\n{process.communicate(timeout=30)[0]}")
        children = subprocess.run(
            ["pgrep", "-P", str(process.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        assert len(children) == 4  # embedded redis, worker, scheduler, web
        for offset in (1, 2):  # where the sandbox and the demo site would be
            with pytest.raises(requests.ConnectionError):
                requests.get(f"http://127.0.0.1:{unused_port_block + offset}/", timeout=2)
        time.sleep(1.0)  # the supervisor announces the URLs after its health poll
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    said = [line for line in output.splitlines() if "development tools" in line]
    assert said == [
        "Not installed: the sandbox timebank and the demo site (development tools); starting "
        "the gateway without them. To add the development tools, in a clone of the repository: "
        "`make run` (which installs them) or `pip install -e ./devtools`."
    ]
    assert "Gateway ready at" in output
    assert "Sandbox timebank at" not in output
    assert "Demo site at" not in output

"""Fixtures: the sandbox as a real server on a loopback port, driven through the connector.

Every request the sandbox serves on the partner API, and every answer it gives with a status the
contract documents, is validated against ``timebank-partner-api.yaml``; a test fails if any
exchange broke the contract.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from flask import Flask, Response, request
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.templating.responses.exceptions import ResponseNotFound
from werkzeug.serving import make_server
from werkzeug.wrappers import Request as WerkzeugRequest
from werkzeug.wrappers import Response as WerkzeugResponse

from connectors.interface import PlatformConfig
from connectors.timerepublik import TimeRepublikConnector
from gateway_sandbox import SandboxServer, create_sandbox_app
from tests.connectors.contract import partner_api

CLIENT_ID = "gateway"
CLIENT_SECRET = "test-client-secret"
# Requests a test sends on purpose against the contract carry this header.
UNCHECKED = {"X-Test-Off-Contract": "1"}


def wait_for(condition: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll ``condition`` until it is truthy (returned) or ``timeout`` passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def sandbox_config(data_dir: Any, **extra: Any) -> dict[str, Any]:
    """A sandbox configuration for tests: quick webhook retries, its own data directory."""
    return {
        "SANDBOX_DATA_DIR": str(data_dir),
        "SANDBOX_CLIENT_ID": CLIENT_ID,
        "SANDBOX_CLIENT_SECRET": CLIENT_SECRET,
        "SANDBOX_WEBHOOK_RETRY_BASE_SECONDS": 0.05,
        "SANDBOX_WEBHOOK_POLL_SECONDS": 0.02,
        "SANDBOX_WEBHOOK_TIMEOUT_SECONDS": 2.0,
        **extra,
    }


def check_contract(app: Flask, server_url: str, errors: list[str]) -> None:
    """Validate every partner-API exchange of ``app`` against the contract, into ``errors``."""
    api = partner_api(server_url)

    @app.after_request
    def _validate(response: Response) -> Response:
        path = request.path
        if not path.startswith(("/v1/", "/oauth/")) or path == "/oauth/authorize":
            return response
        openapi_request = WerkzeugOpenAPIRequest(request)
        if "X-Test-Off-Contract" not in request.headers:
            try:
                api.validate_request(openapi_request)
            except Exception as exc:  # noqa: BLE001 - every kind of mismatch is recorded
                errors.append(f"request {request.method} {path}: {exc!r}")
        try:
            api.validate_response(openapi_request, WerkzeugOpenAPIResponse(response))
        except ResponseNotFound:
            pass  # a status the contract does not list (e.g. 404 on a reversal)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"response {response.status_code} to {request.method} {path}: {exc!r}")
        return response


@dataclass
class RunningSandbox:
    """A started sandbox: its app, URL and a session for its control endpoints."""

    app: Flask
    server: SandboxServer
    contract_errors: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call a ``/_sandbox`` endpoint; returns its JSON."""
        response = requests.request(method, f"{self.url}/_sandbox/{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()

    def faults(self, **settings: Any) -> dict[str, Any]:
        """Set fault knobs."""
        return self.control("POST", "faults", json=settings)

    def connector(self, **options: Any) -> TimeRepublikConnector:
        """A TimeRepublik connector pointed at this sandbox."""
        config = PlatformConfig(
            name="sandbox",
            base_url=self.url,
            credentials={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
            options={"connect_timeout": 2.0, "read_timeout": 10.0, **options},
        )
        return TimeRepublikConnector(config)

    def clearing_wallet(self) -> str:
        return self.app.config["SANDBOX_CLEARING_WALLET_ID"]


def start_sandbox(data_dir: Any, **extra: Any) -> RunningSandbox:
    """Build and start a sandbox server on an ephemeral loopback port."""
    app = create_sandbox_app(sandbox_config(data_dir, **extra))
    server = SandboxServer(app, "127.0.0.1", 0)
    running = RunningSandbox(app, server)
    check_contract(app, server.url, running.contract_errors)
    server.start()
    return running


@pytest.fixture
def sandbox(tmp_path) -> Iterator[RunningSandbox]:
    """A running sandbox; fails the test if an exchange broke the contract."""
    running = start_sandbox(tmp_path / "sandbox")
    yield running
    running.server.stop()
    assert running.contract_errors == []


@pytest.fixture
def tr(sandbox) -> Iterator[TimeRepublikConnector]:
    """The TimeRepublik connector on the sandbox."""
    connector = sandbox.connector()
    yield connector
    connector.close()


@dataclass
class Receiver:
    """A webhook receiver on a loopback port: records raw deliveries, answers as scripted."""

    url: str = ""
    deliveries: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answers to give first, then 204
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        incoming = WerkzeugRequest(environ)
        with self.lock:
            self.deliveries.append((dict(incoming.headers), incoming.get_data()))
            status = self.statuses.pop(0) if self.statuses else 204
        return WerkzeugResponse(status=status)(environ, start_response)

    def wait(self, count: int, timeout: float = 5.0) -> list[tuple[dict[str, str], bytes]]:
        """Wait until ``count`` deliveries arrived; returns them."""
        wait_for(lambda: len(self.deliveries) >= count, timeout)
        with self.lock:
            return list(self.deliveries)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver server."""
    target = Receiver()
    httpd = make_server("127.0.0.1", 0, target, threaded=True)
    target.url = f"http://127.0.0.1:{httpd.server_port}/callbacks/sandbox"
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield target
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)

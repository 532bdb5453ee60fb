"""Serving an app on a real loopback port from a thread, for tests that speak real HTTP."""

from __future__ import annotations

import re
import threading
from types import TracebackType

import requests
from flask import Flask
from werkzeug.serving import make_server


class LiveServer:
    """``app`` on werkzeug's threaded server at ``http://127.0.0.1:<port>``."""

    def __init__(self, app: Flask, port: int) -> None:
        self.app = app
        self.httpd = make_server("127.0.0.1", port, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)


def form_token(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = re.search(r'name="csrf_token"\s+value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"\s+name="csrf_token"', html
    )
    assert match, "the page has no CSRF token"
    return match.group(1)


def browser_login(browser: requests.Session, base: str, email: str, password: str) -> None:
    """Log ``browser`` in through the gateway's login page, as a person would."""
    page = browser.get(f"{base}/login")
    assert page.status_code == 200, page.text
    done = browser.post(
        f"{base}/login",
        data={"email": email, "password": password, "csrf_token": form_token(page.text)},
        allow_redirects=False,
    )
    assert done.status_code in (302, 303), done.text


def follow_until(browser: requests.Session, url: str, prefix: str, limit: int = 10) -> str:
    """Follow redirects from ``url`` until one points at ``prefix``; return that location."""
    for _ in range(limit):
        response = browser.get(url, allow_redirects=False)
        assert response.status_code in (302, 303), (response.status_code, response.text[:500])
        location = response.headers["Location"]
        if location.startswith(prefix):
            return location
        url = requests.compat.urljoin(url, location)
    raise AssertionError(f"no redirect to {prefix} after {limit} hops")

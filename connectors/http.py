"""The one HTTP client connectors use, and the one table that classifies every failure.

Connectors never call ``requests`` directly: ``HttpClient`` adds the base URL, default timeouts,
JSON in and out, bearer tokens (refreshed once on 401), and turns every ``requests`` exception and
error status into a typed error through ``STATUS_RULES`` and ``EXCEPTION_RULES``. It never retries
on its own (the sync engine does, with backoff) and never logs headers, bodies or tokens.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import quote, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from connectors.errors import (
    AuthError,
    ConflictError,
    ConnectorError,
    PermanentError,
    RateLimitedError,
    RetryableError,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "EXCEPTION_RULES",
    "STATUS_RULES",
    "HttpClient",
    "HttpResponse",
    "TokenSource",
    "error_for_exception",
    "error_for_response",
    "parse_retry_after",
    "segment",
    "timeout_from_options",
]

log = logging.getLogger(__name__)

# (connect, read) seconds: a platform that does not answer within these is treated as down.
DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)
# A Retry-After beyond a day is a platform bug; waiting that long would look like a hang.
MAX_RETRY_AFTER = 86_400.0


class TokenSource(Protocol):
    """Gives bearer tokens; ``invalidate`` drops a cached one the platform refused."""

    def token(self) -> str:
        """A bearer token valid now."""
        ...

    def invalidate(self) -> None:
        """Forget the current token so that the next ``token()`` obtains a new one."""
        ...


@dataclass(frozen=True)
class HttpResponse:
    """A successful answer: status, headers and the decoded JSON body (None when empty)."""

    status: int
    headers: Mapping[str, str]
    body: Any


@dataclass(frozen=True)
class Failure:
    """What the error factories of the table see of a failed exchange."""

    method: str
    path: str
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    problem: dict[str, Any] = field(default_factory=dict)

    @property
    def code(self) -> str | None:
        """The machine-readable code of the error body, if any."""
        return problem_code(self.problem)

    @property
    def message(self) -> str:
        """One line naming the request and the platform's own explanation."""
        detail = problem_detail(self.problem)
        text = f"{self.method} {self.path} answered {self.status}"
        return f"{text}: {detail}" if detail else text


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None if absent."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; a zone-less one is read as such
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def problem_code(problem: Mapping[str, Any]) -> str | None:
    """``code`` of an RFC 9457 body, or of the first JSON:API error, or an OAuth ``error``."""
    code = problem.get("code")
    if isinstance(code, str) and code:
        return code
    errors = problem.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0].get("code")
        if isinstance(first, str) and first:
            return first
    oauth = problem.get("error")
    return oauth if isinstance(oauth, str) and oauth else None


def problem_detail(problem: Mapping[str, Any]) -> str | None:
    """The human explanation of an error body, whichever of the usual shapes it has."""
    for key in ("detail", "error_description", "title"):
        value = problem.get(key)
        if isinstance(value, str) and value:
            return value
    errors = problem.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        for key in ("detail", "title"):
            value = errors[0].get(key)
            if isinstance(value, str) and value:
                return value
    return None


def _retryable(failure: Failure) -> ConnectorError:
    return RetryableError(
        failure.message,
        retry_after=parse_retry_after(failure.headers.get("Retry-After")),
        status=failure.status,
        problem=failure.problem,
    )


def _rate_limited(failure: Failure) -> ConnectorError:
    return RateLimitedError(
        failure.message,
        retry_after=parse_retry_after(failure.headers.get("Retry-After")),
        status=failure.status,
        problem=failure.problem,
    )


def _auth(failure: Failure) -> ConnectorError:
    code = failure.code or ("unauthorized" if failure.status == 401 else "forbidden")
    return AuthError(failure.message, code, status=failure.status, problem=failure.problem)


def _conflict(failure: Failure) -> ConnectorError:
    existing = failure.problem.get("existing_id")
    return ConflictError(
        failure.message,
        existing if isinstance(existing, str) else None,
        code=failure.code or "conflict",
        status=failure.status,
        problem=failure.problem,
    )


def _permanent(failure: Failure) -> ConnectorError:
    code = failure.code or f"http_{failure.status}"
    return PermanentError(failure.message, code, status=failure.status, problem=failure.problem)


def _redirect(failure: Failure) -> ConnectorError:
    # Following a redirect could replay a write elsewhere; an API that redirects is misconfigured.
    return PermanentError(
        failure.message, "unexpected_redirect", status=failure.status, problem=failure.problem
    )


# The retry policy: the first rule whose statuses contain the response's status decides.
STATUS_RULES: tuple[tuple[Container[int], Callable[[Failure], ConnectorError]], ...] = (
    ((429,), _rate_limited),  # throttled: Retry-After is the floor of the wait
    ((408, 425), _retryable),  # request timeout, too early: the same request may pass later
    ((401, 403), _auth),  # reached only after one token refresh was tried
    ((409,), _conflict),
    (range(500, 600), _retryable),  # the platform's own failure (503 may carry Retry-After)
    (range(400, 500), _permanent),  # validation and the like: the same request fails again
    (range(300, 400), _redirect),
)

# Checked in order; ConnectTimeout is both a ConnectionError and a Timeout.
EXCEPTION_RULES: tuple[tuple[type[Exception], Callable[[str], ConnectorError]], ...] = (
    (requests.Timeout, lambda m: RetryableError(f"timed out: {m}")),
    (requests.ConnectionError, lambda m: RetryableError(f"connection failed: {m}")),
    (requests.exceptions.ChunkedEncodingError, lambda m: RetryableError(f"cut off: {m}")),
    (requests.exceptions.ContentDecodingError, lambda m: RetryableError(f"garbled: {m}")),
    (requests.exceptions.InvalidURL, lambda m: PermanentError(f"bad URL: {m}", "bad_url")),
    (requests.exceptions.InvalidSchema, lambda m: PermanentError(f"bad URL: {m}", "bad_url")),
    (requests.exceptions.MissingSchema, lambda m: PermanentError(f"bad URL: {m}", "bad_url")),
    (requests.exceptions.InvalidHeader, lambda m: PermanentError(f"bad header: {m}", "bad_header")),
    (requests.RequestException, lambda m: RetryableError(f"request failed: {m}")),
)


def error_for_response(
    method: str, path: str, response: requests.Response
) -> ConnectorError | None:
    """The typed error for an error status, or None for 2xx."""
    if 200 <= response.status_code < 300:
        return None
    problem: dict[str, Any] = {}
    try:
        decoded = response.json() if response.content else {}
    except ValueError:
        decoded = {}
    if isinstance(decoded, dict):
        problem = decoded
    failure = Failure(method, path, response.status_code, response.headers, problem)
    for statuses, factory in STATUS_RULES:
        if response.status_code in statuses:
            return factory(failure)
    return _permanent(failure)  # 1xx or a non-standard status: nothing to retry into


def error_for_exception(method: str, path: str, exc: requests.RequestException) -> ConnectorError:
    """The typed error for a ``requests`` exception (its message names no secret)."""
    # The exception text holds the URL and reason, never headers; add our method and path.
    message = f"{method} {path}: {type(exc).__name__}"
    for exc_type, factory in EXCEPTION_RULES:
        if isinstance(exc, exc_type):
            return factory(message)
    return RetryableError(message)


def segment(value: str) -> str:
    """``value`` quoted as one path segment: a remote id can never climb out of its path."""
    if value in ("", ".", ".."):
        raise PermanentError(f"{value!r} cannot name a resource", "validation_error")
    return quote(value, safe="")


def timeout_from_options(options: Mapping[str, Any]) -> tuple[float, float]:
    """(connect, read) timeouts from ``connect_timeout``/``read_timeout`` options, or defaults."""
    connect = float(options.get("connect_timeout", DEFAULT_TIMEOUT[0]))
    read = float(options.get("read_timeout", DEFAULT_TIMEOUT[1]))
    if connect <= 0 or read <= 0:
        raise PermanentError("timeouts must be positive", "misconfigured")
    return (connect, read)


class HttpClient:
    """JSON over a pooled ``requests.Session``, with every failure translated to a typed error."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        token_source: TokenSource | None = None,
        default_headers: Mapping[str, str] | None = None,
        session: requests.Session | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise PermanentError(f"base URL must be http(s): {base_url!r}", "misconfigured")
        # A trailing slash makes urljoin append paths instead of replacing the last segment.
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = timeout
        self.token_source = token_source
        self.default_headers = dict(default_headers or {})
        self.session = session or self._new_session(self.base_url)

    @staticmethod
    def _new_session(base_url: str) -> requests.Session:
        session = requests.Session()
        # No urllib3 retries: a retried POST could act twice; the sync engine retries with keys.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        # The environment's proxies and CA bundle, read once for this platform's host: requests
        # otherwise scans the whole environment on every call, which cost more than a loopback
        # call itself. Changing them takes a restart, as any other setting does.
        session.proxies = requests.utils.get_environ_proxies(base_url)
        session.verify = (
            os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        )
        session.trust_env = False
        return session

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` under the base URL (an absolute ``path`` is kept)."""
        if path.startswith(("http://", "https://")):
            return path
        return urljoin(self.base_url, path.lstrip("/"))

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        auth: tuple[str, str] | None = None,
        authenticated: bool = True,
    ) -> HttpResponse:
        """Send one request; returns the 2xx answer or raises a typed ``ConnectorError``.

        With a token source and ``authenticated``, a 401 drops the token and the request is sent
        once more with a fresh one; a second refusal raises ``AuthError``.
        """
        source = self.token_source if authenticated and auth is None else None
        attempts = 2 if source is not None else 1
        for attempt in range(1, attempts + 1):
            bearer = source.token() if source is not None else None
            response = self._send(
                method, path, params, json, form, headers, content_type, auth, bearer
            )
            if response.status_code == 401 and source is not None and attempt < attempts:
                source.invalidate()
                response.close()
                continue
            break
        error = error_for_response(method, path, response)
        if error is not None:
            raise error
        return HttpResponse(response.status_code, response.headers, self._decode(response))

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json: Any,
        form: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        content_type: str,
        auth: tuple[str, str] | None,
        bearer: str | None,
    ) -> requests.Response:
        merged = {"Accept": "application/json", **self.default_headers, **(headers or {})}
        if json is not None:
            merged["Content-Type"] = content_type
        if bearer is not None:
            merged["Authorization"] = f"Bearer {bearer}"
        started = time.monotonic()
        try:
            response = self.session.request(
                method,
                self.url(path),
                params=params,
                json=json,
                data=form,
                headers=merged,
                auth=auth,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            log.info("%s %s failed: %s", method, path, type(exc).__name__)
            raise error_for_exception(method, path, exc) from exc
        log.debug(
            "%s %s -> %s in %.0f ms",
            method,
            path,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        return response

    @staticmethod
    def _decode(response: requests.Response) -> Any:
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            # A 2xx that is not JSON is usually a proxy's page in front of the API: transient.
            raise RetryableError(
                f"{response.request.method} answered {response.status_code} with a body "
                "that is not JSON",
                status=response.status_code,
            ) from exc

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

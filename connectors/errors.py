"""The typed errors every connector raises: the sync engine decides by class alone.

- ``RetryableError``: try again later (network, timeout, 5xx, 429); ``retry_after`` is the
  platform's own floor in seconds when it gave one.
- ``RateLimitedError``: a retryable error saying the platform is up but throttling us (429): the
  engine waits ``retry_after`` without counting the attempt against the row.
- ``PermanentError``: retrying cannot help (validation, 4xx); ``code`` says why, machine-readable.
- ``ConflictError``: what we tried to create exists already (a member's email, a transfer's
  reference); ``existing_id`` names it when the platform told us. A permanent error, so code that
  only knows ``PermanentError`` never retries it.
- ``AuthError``: the platform refused our credentials even after a token refresh.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthError",
    "ConflictError",
    "ConnectorError",
    "PermanentError",
    "RateLimitedError",
    "RetryableError",
]


class ConnectorError(Exception):
    """Base of every error a connector raises.

    ``status`` is the HTTP status when a response caused it; ``problem`` the decoded error body
    (RFC 9457 or JSON:API ``errors``), for connectors that need a closer look.
    """

    def __init__(
        self, message: str, *, status: int | None = None, problem: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.problem = problem or {}


class RetryableError(ConnectorError):
    """A failure that may pass: retry with backoff, waiting at least ``retry_after`` seconds."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = None,
        problem: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, status=status, problem=problem)
        self.retry_after = retry_after


class RateLimitedError(RetryableError):
    """The platform throttles us (HTTP 429, or its own way of saying so): come back after
    ``retry_after`` seconds. The platform is up, and the request was not at fault."""


class PermanentError(ConnectorError):
    """A failure that retrying cannot fix; ``code`` is the machine-readable reason."""

    def __init__(
        self,
        message: str,
        code: str = "permanent",
        *,
        status: int | None = None,
        problem: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, status=status, problem=problem)
        self.code = code


class ConflictError(PermanentError):
    """The resource exists already; ``existing_id`` is its remote id when known."""

    def __init__(
        self,
        message: str,
        existing_id: str | None = None,
        *,
        code: str = "conflict",
        status: int | None = 409,
        problem: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code, status=status, problem=problem)
        self.existing_id = existing_id


class AuthError(PermanentError):
    """Credentials refused (401/403) after one token refresh: an operator must act."""

    def __init__(
        self,
        message: str,
        code: str = "unauthorized",
        *,
        status: int | None = None,
        problem: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code, status=status, problem=problem)

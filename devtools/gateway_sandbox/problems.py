"""RFC 9457 problem details, the sandbox's one error shape (with the contract's ``code``)."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

__all__ = ["PROBLEM_JSON", "SandboxProblem", "init_app", "problem_response"]

PROBLEM_JSON = "application/problem+json"

log = logging.getLogger(__name__)


class SandboxProblem(Exception):
    """An error answered as problem+json; ``code`` is the contract's machine-readable reason."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or code)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions

    def body(self) -> dict[str, Any]:
        """The problem document."""
        document: dict[str, Any] = {
            "type": "about:blank",
            "title": HTTPStatus(self.status).phrase,
            "status": self.status,
            "code": self.code,
        }
        if self.detail:
            document["detail"] = self.detail
        document.update(self.extensions)
        return document


def problem_response(problem: SandboxProblem) -> Response:
    """``problem`` rendered as an HTTP response."""
    response = Response(
        json.dumps(problem.body()), status=problem.status, content_type=PROBLEM_JSON
    )
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response


def init_app(app: Flask) -> None:
    """Answer every error of the sandbox as problem+json."""

    @app.errorhandler(SandboxProblem)
    def _problem(error: SandboxProblem) -> Response:
        return problem_response(error)

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Response:
        status = error.code or 500
        code = "not_found" if status == 404 else HTTPStatus(status).phrase.lower().replace(" ", "_")
        return problem_response(SandboxProblem(status, code, error.description))

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("sandbox error on %s %s", request.method, request.path)
        return problem_response(SandboxProblem(500, "internal_error", "unexpected sandbox error"))

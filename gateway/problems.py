"""RFC 9457 problem details: the one error shape of every API path.

Views raise ``Problem`` (or a werkzeug ``HTTPException``); the handlers
installed by ``init_app`` roll the session back and render
``application/problem+json``. Pages (blueprints listed in
``app.extensions["page_blueprints"]``) get a readable HTML message instead.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, current_app, json, render_template_string, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://gateway.milanoseilaltro.it/problems/"


class Problem(Exception):
    """An error answered as problem+json: status, title, detail and extension members."""

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        title: str | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title or HTTPStatus(status).phrase)
        self.status = status
        self.title = title or HTTPStatus(status).phrase
        self.detail = detail
        self.type = type
        self.headers = headers or {}
        self.extensions = extensions

    def to_dict(self) -> dict[str, Any]:
        """The problem document."""
        body: dict[str, Any] = {
            "type": TYPE_BASE + self.type if self.type else "about:blank",
            "title": self.title,
            "status": self.status,
        }
        if self.detail:
            body["detail"] = self.detail
        body["instance"] = request.path if request else None
        body.update(self.extensions)
        return body


class ValidationProblem(Problem):
    """422 with the field messages of a failed schema load."""

    def __init__(
        self, errors: dict[str, Any], detail: str = "The request has invalid fields."
    ) -> None:
        super().__init__(422, detail, title="Invalid request", type="validation", errors=errors)


def problem_response(problem: Problem) -> Response:
    """Render ``problem`` as an ``application/problem+json`` response."""
    response = current_app.response_class(
        json.dumps(problem.to_dict()), status=problem.status, mimetype=PROBLEM_JSON
    )
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response


_PAGE = """<!doctype html>
<html lang="{{ lang }}"><head><meta charset="utf-8"><title>{{ title }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>{{ title }}</h1><p role="alert">{{ detail }}</p>
<p><a href="/">{{ home }}</a></p></main></body></html>"""


def _wants_page() -> bool:
    pages = current_app.extensions.get("page_blueprints", set())
    return request.blueprint in pages


def _render_page(problem: Problem) -> Response:
    from gateway.i18n import current_locale

    italian = current_locale() == "it"
    body = render_template_string(
        _PAGE,
        lang="it" if italian else "en",
        title=problem.title,
        detail=problem.detail or "",
        home="Torna alla pagina iniziale" if italian else "Back to the home page",
    )
    response = current_app.response_class(body, status=problem.status, mimetype="text/html")
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response


def _rollback() -> None:
    db = current_app.extensions.get("db")
    if db is not None:
        db.session.rollback()


def init_app(app: Flask) -> None:
    """Install the handlers that turn every error into a problem (or a page)."""
    app.extensions.setdefault("page_blueprints", set())

    @app.errorhandler(Problem)
    def _problem(problem: Problem) -> Response:
        _rollback()
        return _render_page(problem) if _wants_page() else problem_response(problem)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        _rollback()
        status = exc.code or 500
        problem = Problem(status, exc.description, title=HTTPStatus(status).phrase)
        if status == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            problem.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return _render_page(problem) if _wants_page() else problem_response(problem)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        _rollback()
        log.exception("unhandled error on %s %s", request.method, request.path)
        problem = Problem(500, "The gateway hit an unexpected error; it has been logged.")
        return _render_page(problem) if _wants_page() else problem_response(problem)

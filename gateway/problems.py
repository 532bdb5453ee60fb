"""RFC 9457 problem details: the one error shape of every API path.

Views raise ``Problem`` (or a werkzeug ``HTTPException``); the handlers
installed by ``init_app`` roll the session back and render
``application/problem+json``. Browsers get the same error as a page in the
gateway's layout, in their language, with a way on (``wants_page`` decides).
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from flask import (
    Flask,
    Response,
    current_app,
    g,
    json,
    render_template,
    render_template_string,
    request,
)
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://gateway.milanoseilaltro.it/problems/"
# A problem type is the last segment of its URI, in kebab case: "credit-limit-exceeded".
TYPE_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def problem_type(code: str) -> str:
    """The problem type for a machine code of ours or a protocol's (``invalid_token``)."""
    return code.replace("_", "-").lower()


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
        if type is not None and not TYPE_SLUG.fullmatch(type):
            raise ValueError(f"problem type {type!r} is not kebab case; see problem_type()")
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


# The last resort when the error page itself cannot be drawn (the database is gone, say).
_BARE_PAGE = """<!doctype html>
<html lang="{{ lang }}"><head><meta charset="utf-8"><title>{{ title }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>{{ title }}</h1><p role="alert">{{ detail }}</p>
<p><a href="/">{{ home }}</a></p></main></body></html>"""
# Statuses whose page has its own words in the catalog (errors.<status>.title/detail).
_WORDED = (400, 403, 404, 405, 413, 429, 500, 503)


def wants_page() -> bool:
    """Whether to answer an error with an HTML page rather than problem+json.

    The one place this is decided. The members', consent and admin pages (the page
    blueprints) answer with a page unless the client prefers JSON; the JSON APIs (every other
    blueprint) always answer problem+json, their documented contract; an address that matches
    no route answers as the client prefers: a page to browsers, which ask for HTML first.
    """
    accept = request.accept_mimetypes
    html = accept["text/html"]
    data = max(accept[PROBLEM_JSON], accept["application/json"])
    if request.blueprint in current_app.extensions.get("page_blueprints", set()):
        return html >= data
    if request.blueprint is None:
        return html > data
    return False


def _words(problem: Problem, reworded: bool) -> tuple[str, str]:
    """The title and detail to show: the problem's own, or the catalog's for its status."""
    from gateway.i18n import gettext

    if reworded and problem.status in _WORDED:
        return gettext(f"errors.{problem.status}.title"), gettext(f"errors.{problem.status}.detail")
    if reworded:
        return problem.title, gettext("errors.other.detail")
    return problem.title, problem.detail or ""


def _render_page(problem: Problem, reworded: bool = False) -> Response:
    """The error as a page in the gateway's layout, with a way on from it."""
    from gateway.i18n import DEFAULT_LOCALE, LOCALES, current_locale, gettext

    try:
        lang = current_locale()  # may ask the database who is logged in
    except SQLAlchemyError:  # the page still speaks the browser's language
        _rollback()
        lang = g.locale = request.accept_languages.best_match(LOCALES) or DEFAULT_LOCALE
    title, detail = _words(problem, reworded)
    # A refused form (CSRF, a limit) whose page can be opened again offers to, on its way
    # to the same ``next``.
    rule = request.url_rule
    retry = None
    if request.method not in ("GET", "HEAD") and rule is not None and "GET" in (rule.methods or ()):
        retry = request.full_path.rstrip("?")
        carried = request.form.get("next")
        if carried and "next" not in request.args:
            retry = f"{retry}{'&' if request.args else '?'}{urlencode({'next': carried})}"
    try:
        body = render_template(
            "errors/error.html", status=problem.status, title=title, detail=detail, retry=retry
        )
    except Exception:  # any failure of the layout falls back to the bare page
        log.exception("the error page for %s could not be drawn", problem.status)
        _rollback()
        body = render_template_string(
            _BARE_PAGE,
            lang=lang,
            title=title,
            detail=detail,
            home=gettext("errors.home"),
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
        return _render_page(problem) if wants_page() else problem_response(problem)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        _rollback()
        status = exc.code or 500
        problem = Problem(status, exc.description, title=HTTPStatus(status).phrase)
        if status == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            problem.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return _render_page(problem, reworded=True) if wants_page() else problem_response(problem)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        _rollback()
        log.exception("unhandled error on %s %s", request.method, request.path)
        problem = Problem(500, "The gateway hit an unexpected error; it has been logged.")
        return _render_page(problem, reworded=True) if wants_page() else problem_response(problem)

"""Refusing the NUL character (U+0000) in every input before a view sees it.

PostgreSQL text cannot hold NUL, so a NUL that reached a query or an insert was a 500 (found by
schemathesis in an organization's name). No field of ours has a use for it, so it is refused at
the door: in a path, 404 (no id contains it); in a query string, a form or a JSON body, 422 with
the field it was found in. Partner callbacks are left to their connector, which refuses NUL in
the fields it reads (``connectors.fields``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from flask import Flask, request

from gateway.problems import Problem, ValidationProblem

NUL = "\x00"
MESSAGE = "Must not contain the NUL character (U+0000)."
# Signed raw bodies, verified and parsed by the platform's connector.
UNCHECKED_BODIES = ("/callbacks/",)


def _nul_paths(value: Any, path: str) -> Iterator[str]:
    """The dotted paths, under ``path``, of strings (keys included) that hold a NUL."""
    if isinstance(value, str):
        if NUL in value:
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if NUL in str(key):
                yield inner
            yield from _nul_paths(item, inner)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_paths(item, f"{path}.{index}" if path else str(index))


def _first_in(pairs: Iterable[tuple[str, str]]) -> str | None:
    for key, value in pairs:
        if NUL in key or NUL in value:
            return key.replace(NUL, "\\0")
    return None


def refuse_nul() -> None:
    """A ``before_request`` hook: raise a problem if any input of the request holds a NUL."""
    if NUL in request.path:
        raise Problem(404, "No resource has that address.")
    field = _first_in(request.args.items(multi=True))
    if field is None and request.method in ("POST", "PUT", "PATCH"):
        if request.path.startswith(UNCHECKED_BODIES):
            return
        if request.is_json:
            body = request.get_json(silent=True)  # cached: the view reads the same parse
            field = next(_nul_paths(body, ""), None)
        else:
            field = _first_in(request.form.items(multi=True))
    if field is not None:
        name = field or "_body"
        raise ValidationProblem(
            {name: [MESSAGE]}, detail=f"The field {name!r} holds the NUL character (U+0000)."
        )


def init_app(app: Flask) -> None:
    """Check every request's inputs before its view runs."""
    app.before_request(refuse_nul)

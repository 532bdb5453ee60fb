"""Reading request bodies and query strings through their marshmallow schemas."""

from __future__ import annotations

from typing import Any

from flask import request
from marshmallow import Schema

from gateway.problems import Problem


def load_json(schema: Schema) -> dict[str, Any]:
    """The JSON body loaded by ``schema``; 415 or 400 problems when it is not a JSON body."""
    if not request.is_json:
        raise Problem(
            415,
            "Send the body as JSON with Content-Type: application/json.",
            code="unsupported_media_type",
        )
    data = request.get_json(silent=True)
    if data is None:
        raise Problem(400, "The body is not valid JSON.", code="invalid_json")
    loaded: dict[str, Any] = schema.load(data)
    return loaded


def load_query(schema: Schema) -> dict[str, Any]:
    """The query string loaded by ``schema`` (each parameter given once)."""
    loaded: dict[str, Any] = schema.load(request.args.to_dict(flat=True))
    return loaded

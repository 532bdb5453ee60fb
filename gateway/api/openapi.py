"""The OpenAPI 3.1 document, generated from the views' ``@operation`` notes and the schemas.

Each API view says what it takes and answers with ``@operation(...)``; ``build_spec`` walks the
app's URL map, turns those notes into operations (the marshmallow schemas become JSON Schemas
through apispec), and ``/openapi.json`` serves the result. ``/docs`` renders the same document
as one readable page, with nothing loaded from elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypeVar

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin, resolver
from flask import Blueprint, Flask, Response, current_app, json
from marshmallow import Schema

from gateway.auth.scopes import SCOPES
from schemas import ledger as ledger_schemas
from schemas.common import ProblemSchema
from schemas.webhooks import EVENT_SCHEMAS

F = TypeVar("F", bound=Callable[..., Any])

OPENAPI_VERSION = "3.1.0"
PROBLEM_JSON = "application/problem+json"
SECURITY_SCHEME = "gatewayOAuth"

_DESCRIPTION = """\
The hour ledger of the Milano Sei l'Altro community, for the project's website.

Amounts are whole **minutes**. Every transaction is double-entry: the payer (who was helped or
used a desk) gives minutes to the payee. A correction is a reversal, never an edit.

**Authentication**: a bearer token from the gateway's OpenID provider. Tokens issued for a member
read only that member's account and post only as the payer; the website's back end, with a
client-credentials token, posts between any members and organizations.

**Idempotency**: every POST needs an `Idempotency-Key` header (a fresh UUID per intended effect).
Repeating a request with the same key and body replays the first response (with
`Idempotent-Replayed: true`); another body under the same key is refused (422); a key whose
first request is still running answers 409 with `Retry-After`. Keys live 24 hours.

**Errors** are `application/problem+json` (RFC 9457) with a machine `code`, and field messages
under `errors` when the request was invalid.
"""


@dataclass(frozen=True)
class Operation:
    """What one view takes and answers, for the OpenAPI document."""

    summary: str
    scopes: Sequence[str]
    tag: str
    responses: Mapping[int, tuple[str, type[Schema] | None]]
    description: str = ""
    body: type[Schema] | None = None
    query: type[Schema] | None = None
    idempotent: bool = False
    example: Mapping[str, Any] | None = None
    response_headers: Mapping[int, Mapping[str, str]] = field(default_factory=dict)


def operation(**notes: Any) -> Callable[[F], F]:
    """Note a view's contract for the OpenAPI document (see ``Operation`` for the fields)."""
    described = Operation(**notes)

    def note(view: F) -> F:
        view.__openapi__ = described  # type: ignore[attr-defined]
        return view

    return note


_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def _path_parameters(names: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "format": "uuid"},
        }
        for name in names
    ]


def _header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string"}}


def _operation_dict(endpoint: str, op: Operation, path_args: Sequence[str]) -> dict[str, Any]:
    scopes = " or ".join(f"`{s}`" for s in op.scopes)
    description = f"{op.description}\n\nScopes: {scopes}.".strip()
    parameters = _path_parameters(path_args)
    if op.query is not None:
        parameters.append({"in": "query", "schema": op.query})
    if op.idempotent:
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": True,
                "description": "A unique value (a UUID) per intended effect; kept 24 hours.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        )
    responses: dict[str | int, Any] = {}
    for status, (text, schema) in sorted(op.responses.items()):
        media = "application/json" if status < 400 else PROBLEM_JSON
        response: dict[str, Any] = {"description": text}
        response["content"] = {media: {"schema": schema or ProblemSchema}}
        headers = dict(op.response_headers.get(status, {}))
        if op.idempotent and status < 400:
            headers["Idempotent-Replayed"] = "`true` when this is a stored response replayed."
        if headers:
            response["headers"] = {name: _header(about) for name, about in headers.items()}
        responses[str(status)] = response
    for status, text in ((401, "No valid bearer token."), (403, "The token may not do this.")):
        responses.setdefault(
            str(status),
            {"description": text, "content": {PROBLEM_JSON: {"schema": ProblemSchema}}},
        )
    responses = dict(sorted(responses.items()))
    responses["default"] = {
        "description": "Any other error, as a problem.",
        "content": {PROBLEM_JSON: {"schema": ProblemSchema}},
    }
    operation_dict: dict[str, Any] = {
        "operationId": endpoint.rsplit(".", 1)[-1],
        "summary": op.summary,
        "description": description,
        "tags": [op.tag],
        "security": [{SECURITY_SCHEME: [scope]} for scope in op.scopes],
        "parameters": parameters,
        "responses": responses,
    }
    if op.body is not None:
        body_media: dict[str, Any] = {"schema": op.body}
        if op.example is not None:
            body_media["example"] = dict(op.example)
        operation_dict["requestBody"] = {
            "required": True,
            "content": {"application/json": body_media},
        }
    return operation_dict


def _public_schemas(module: ModuleType) -> list[type[Schema]]:
    """The schema classes a module defines, in source order (registered with their docstrings)."""
    return [
        value
        for name, value in vars(module).items()
        if isinstance(value, type)
        and issubclass(value, Schema)
        and value.__module__ == module.__name__
        and not name.startswith("_")
    ]


def build_spec(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every ``@operation`` view of ``app``."""
    base_url = app.config.get("GATEWAY_BASE_URL", "http://127.0.0.1:5000")
    spec = APISpec(
        title="Community gateway API",
        version="1",
        openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin()],
        info={"description": _DESCRIPTION},
        servers=[{"url": base_url}],
    )
    spec.components.security_scheme(
        SECURITY_SCHEME,
        {
            "type": "openIdConnect",
            "openIdConnectUrl": f"{base_url}/.well-known/openid-configuration",
            "description": "Bearer tokens from the gateway's provider. Scopes: "
            + "; ".join(f"`{name}`: {text}" for name, text in SCOPES.items()),
        },
    )
    documented: list[type[Schema]] = [ProblemSchema, *_public_schemas(ledger_schemas)]
    for schema in documented:
        spec.components.schema(
            resolver(schema),
            component={
                "description": (schema.__doc__ or "").strip().split("\n\n")[0],
                **getattr(schema, "OPENAPI", {}),
            },
            schema=schema,
        )
    for event_schema in EVENT_SCHEMAS.values():
        spec.components.schema(
            resolver(event_schema),
            component={"description": (event_schema.__doc__ or "").strip()},
            schema=event_schema,
        )
    rules = sorted(app.url_map.iter_rules(), key=lambda rule: (rule.rule, rule.endpoint))
    for rule in rules:
        view = app.view_functions.get(rule.endpoint)
        op: Operation | None = getattr(view, "__openapi__", None)
        if op is None:
            continue
        path = _PARAM.sub(r"{\1}", rule.rule)
        path_args = _PARAM.findall(rule.rule)
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        spec.path(
            path=path,
            operations={m.lower(): _operation_dict(rule.endpoint, op, path_args) for m in methods},
        )
    document = spec.to_dict()
    document["webhooks"] = _webhooks()
    document["tags"] = [
        {"name": "Members", "description": "The member a token acts for."},
        {"name": "Accounts", "description": "Balances and statements."},
        {"name": "Transactions", "description": "Posting and reversing hours."},
        {"name": "Organizations", "description": "Cooperatives and companies (admin)."},
        {"name": "Events", "description": "What the gateway POSTs to webhook subscriptions."},
    ]
    return document


_WEBHOOK_HEADERS = {
    "webhook-id": "The event's `id`: the same on every retry (deduplicate on it).",
    "webhook-timestamp": "Seconds since the epoch when this attempt was signed; refuse one "
    "more than five minutes away from your clock.",
    "webhook-signature": "Space-separated `v1,<base64 HMAC-SHA256 of id.timestamp.body>`, one "
    "per secret that signs now (two while a secret is being rotated); any one matching is "
    "enough.",
}


def _webhooks() -> dict[str, Any]:
    """OpenAPI 3.1 ``webhooks``: what the gateway POSTs to a subscription, per event type."""
    answers = (
        "Any 2xx takes the event. 429 (with Retry-After), 408, 5xx, timeouts and refused "
        "connections are retried with backoff for hours; another 4xx ends the event as a dead "
        "letter an operator sees. Redirects are not followed."
    )
    return {
        event_type: {
            "post": {
                "summary": (schema.__doc__ or "").strip(),
                "description": "Signed as Standard Webhooks with the subscription's secret "
                "(`gateway webhooks add`). A member's events arrive in the order they happened.",
                "operationId": "event_" + event_type.replace(".", "_"),
                "tags": ["Events"],
                "parameters": [
                    {
                        "name": name,
                        "in": "header",
                        "required": True,
                        "description": text,
                        "schema": {"type": "string"},
                    }
                    for name, text in _WEBHOOK_HEADERS.items()
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{resolver(schema)}"}
                        }
                    },
                },
                "responses": {"2XX": {"description": answers}},
            }
        }
        for event_type, schema in EVENT_SCHEMAS.items()
    }


def spec_of(app: Flask) -> dict[str, Any]:
    """The app's document, built once."""
    if "openapi" not in app.extensions:
        app.extensions["openapi"] = build_spec(app)
    document: dict[str, Any] = app.extensions["openapi"]
    return document


docs_bp = Blueprint("api_docs", __name__)


@docs_bp.get("/openapi.json")
def openapi_json() -> Response:
    """The OpenAPI 3.1 document."""
    return current_app.response_class(
        json.dumps(spec_of(current_app._get_current_object())),  # type: ignore[attr-defined]
        mimetype="application/json",
    )


@docs_bp.get("/docs")
def docs_page() -> Response:
    """The API's documentation as one HTML page."""
    from gateway.api.docs_page import render_docs

    return current_app.response_class(
        render_docs(spec_of(current_app._get_current_object())),  # type: ignore[attr-defined]
        mimetype="text/html",
    )

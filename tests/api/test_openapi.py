"""The OpenAPI document and the docs page describe every API route."""

from __future__ import annotations

import re

import jsonschema_rs


def _spec(client) -> dict:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def test_document_is_openapi_3_1_with_valid_json_schemas(client):
    spec = _spec(client)
    assert spec["openapi"] == "3.1.0"
    assert spec["info"]["title"] == "Community gateway API"
    for schema in spec["components"]["schemas"].values():
        jsonschema_rs.meta.validate(schema)  # raises on an invalid JSON Schema
    scheme = spec["components"]["securitySchemes"]["gatewayOAuth"]
    assert scheme["type"] == "openIdConnect"


def test_every_api_route_is_documented(app, client):
    spec = _spec(client)
    documented = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    routes = {
        (method, re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routes == documented
    assert ("POST", "/api/v1/transactions") in documented


def test_operations_state_scopes_problems_and_idempotency(client):
    spec = _spec(client)
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert operation["security"], (method, path)
            problem = operation["responses"]["default"]["content"]["application/problem+json"]
            assert problem["schema"] == {"$ref": "#/components/schemas/Problem"}
            headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
            assert ("Idempotency-Key" in headers) == (method == "post"), (method, path)
    create = spec["components"]["schemas"]["TransactionCreate"]
    assert create["additionalProperties"] is False
    assert create["properties"]["minutes"]["maximum"] == 14_400
    assert spec["components"]["schemas"]["Party"]["maxProperties"] == 1


def test_docs_page_is_readable_and_self_contained(client):
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "<code>/api/v1/transactions</code>" in page
    assert "Idempotency-Key" in page
    assert 'id="schema-TransactionCreate"' in page
    assert "&#34;kind&#34;: &#34;desk&#34;" in page or '"kind": "desk"' in page
    assert "<script" not in page
    assert not re.search(r'(src|href)="https?://', page)


def test_unknown_api_path_is_a_problem(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"

"""The OpenAPI document lists every event under ``webhooks``, and events match their schemas."""

from __future__ import annotations

import jsonschema_rs

from schemas.vocabulary import WEBHOOK_EVENT_TYPES
from schemas.webhooks import EVENT_SCHEMAS
from tests.webhooks.conftest import event_rows
from tests.webhooks.test_events import _every_kind_of_change


def _resolve(spec: dict, schema: dict) -> dict:
    """The schema with its component references inlined (enough for these documents)."""
    if "$ref" in schema:
        return _resolve(spec, spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]])
    out = {}
    for key, value in schema.items():
        if isinstance(value, dict):
            out[key] = (
                _resolve(spec, value)
                if key != "properties"
                else {name: _resolve(spec, sub) for name, sub in value.items()}
            )
        elif isinstance(value, list):
            out[key] = [_resolve(spec, v) if isinstance(v, dict) else v for v in value]
        else:
            out[key] = value
    return out


def test_every_event_type_is_a_webhook_of_the_document(client):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"] == "3.1.0"
    assert list(spec["webhooks"]) == list(WEBHOOK_EVENT_TYPES)
    for event_type, item in spec["webhooks"].items():
        body = item["post"]["requestBody"]["content"]["application/json"]["schema"]
        schema = _resolve(spec, body)
        jsonschema_rs.meta.validate(schema)
        assert schema["properties"]["type"]["enum"] == [event_type]
        headers = {p["name"] for p in item["post"]["parameters"]}
        assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}


def test_the_events_written_match_the_documented_schemas(app, client, subscribed):
    spec = client.get("/openapi.json").get_json()
    with app.app_context():
        _every_kind_of_change()
        events = [row.payload for row in event_rows(subscribed.platform_id)]
    assert events
    for event in events:
        EVENT_SCHEMAS[event["type"]]().load(event)  # raises on a missing or extra field
        ref = spec["webhooks"][event["type"]]["post"]["requestBody"]["content"]
        validator = jsonschema_rs.validator_for(_resolve(spec, ref["application/json"]["schema"]))
        validator.validate(event)

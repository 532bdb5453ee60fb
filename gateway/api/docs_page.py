"""``/docs``: the OpenAPI document as one server-rendered page (no scripts, no CDN)."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import render_template_string
from markupsafe import Markup, escape

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ info.title }} — documentation</title>
<link rel="stylesheet" href="{{ url_for('static', filename='docs.css') }}"></head>
<body>
<header><h1>{{ info.title }} <small class="muted">v{{ info.version }}</small></h1>
<p>OpenAPI {{ openapi }} document: <a href="/openapi.json">/openapi.json</a></p></header>
<main>
{{ intro }}
<nav aria-label="Operations"><h2>Operations</h2>
{% for tag in tags %}<h3>{{ tag.name }}</h3><ul>
{% for op in tag.operations %}<li><a href="#{{ op.id }}"><span class="method {{ op.method }}">
{{ op.method }}</span> <code>{{ op.path }}</code></a> — {{ op.summary }}</li>{% endfor %}
</ul>{% endfor %}
</nav>
{% for tag in tags %}<section><h2>{{ tag.name }}</h2>
<p class="muted">{{ tag.description }}</p>
{% for op in tag.operations %}
<article id="{{ op.id }}"><h3><span class="method {{ op.method }}">{{ op.method }}</span>
<code>{{ op.path }}</code></h3>
<p><strong>{{ op.summary }}</strong></p>{{ op.description }}
{% if op.parameters %}<h4>Parameters</h4><table><tr><th>name</th><th>in</th>
<th>required</th><th>type</th><th>description</th></tr>
{% for p in op.parameters %}<tr><td><code>{{ p.name }}</code></td><td>{{ p.in }}</td>
<td>{{ "yes" if p.required else "no" }}</td><td>{{ p.type }}</td><td>{{ p.description }}</td>
</tr>{% endfor %}</table>{% endif %}
{% if op.body %}<h4>Request body</h4><p>{{ op.body }}</p>
{% if op.example %}<pre>{{ op.example }}</pre>{% endif %}{% endif %}
<h4>Responses</h4><table><tr><th>status</th><th>description</th><th>body</th></tr>
{% for r in op.responses %}<tr><td>{{ r.status }}</td><td>{{ r.description }}</td>
<td>{{ r.body }}</td></tr>{% endfor %}</table>
</article>{% endfor %}</section>{% endfor %}
<section><h2>Schemas</h2>
{% for s in schemas %}<article id="schema-{{ s.name }}"><h3>{{ s.name }}</h3>
<p>{{ s.description }}</p>
<table><tr><th>field</th><th>type</th><th>required</th><th>rules</th><th>description</th>
<th>example</th></tr>
{% for f in s.fields %}<tr><td><code>{{ f.name }}</code></td><td>{{ f.type }}</td>
<td>{{ "yes" if f.required else "no" }}</td><td>{{ f.rules }}</td><td>{{ f.description }}</td>
<td>{% if f.example is not none %}<code>{{ f.example }}</code>{% endif %}</td></tr>{% endfor %}
</table>{% if s.open %}<p class="muted">Other members may appear.</p>{% endif %}
</article>{% endfor %}</section>
</main></body></html>"""

_RULES = (
    ("minimum", "≥ {}"),
    ("maximum", "≤ {}"),
    ("minLength", "at least {} characters"),
    ("maxLength", "at most {} characters"),
    ("format", "format {}"),
    ("enum", "one of {}"),
    ("default", "default {}"),
)


def _prose(text: str) -> Markup:
    """Paragraphs with `code` and **strong** (the only markup our descriptions use)."""
    html = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        if not paragraph:
            continue
        escaped = str(escape(paragraph.replace("\n", " ")))
        escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
        escaped = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)
        html.append(f"<p>{escaped}</p>")
    return Markup("\n".join(html))  # noqa: S704 - built from escaped text only


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _link(name: str) -> Markup:
    return Markup('<a href="#schema-{0}">{0}</a>').format(name)


def _type(schema: dict[str, Any]) -> Markup:
    if "$ref" in schema:
        return _link(_ref_name(schema["$ref"]))
    if "anyOf" in schema or "oneOf" in schema:
        parts = [_type(s) for s in schema.get("anyOf", schema.get("oneOf", []))]
        return Markup(" | ").join(parts)
    kinds = schema.get("type", "any")
    names = kinds if isinstance(kinds, list) else [kinds]
    rendered = []
    for name in names:
        if name == "array":
            rendered.append(Markup("array of ") + _type(schema.get("items", {})))
        else:
            rendered.append(escape(name))
    return Markup(" | ").join(rendered)


def _rules(schema: dict[str, Any]) -> str:
    return "; ".join(
        template.format(json.dumps(schema[key], ensure_ascii=False))
        for key, template in _RULES
        if key in schema
    )


def _schema_rows(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    required = set(schema.get("required", []))
    fields = [
        {
            "name": field,
            "type": _type(prop),
            "required": field in required,
            "rules": _rules(prop),
            "description": prop.get("description", ""),
            "example": json.dumps(prop["example"], ensure_ascii=False)
            if "example" in prop
            else None,
        }
        for field, prop in schema.get("properties", {}).items()
    ]
    return {
        "name": name,
        "description": schema.get("description", ""),
        "fields": fields,
        "open": schema.get("additionalProperties") not in (False, None),
    }


def _parameter_rows(parameters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "name": p["name"],
            "in": p["in"],
            "required": p.get("required", False),
            "type": _type(p.get("schema", {})),
            "description": p.get("description", ""),
        }
        for p in parameters
    ]


def _body(operation: dict[str, Any]) -> tuple[Markup | None, str | None]:
    body = operation.get("requestBody")
    if not body:
        return None, None
    media = next(iter(body["content"].values()))
    example = media.get("example")
    rendered = json.dumps(example, indent=2, ensure_ascii=False) if example else None
    return Markup("JSON: ") + _type(media.get("schema", {})), rendered


def _responses(operation: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for status, response in operation.get("responses", {}).items():
        content = response.get("content", {})
        body = Markup(", ").join(
            Markup("<code>{}</code> ").format(media) + _type(media_spec.get("schema", {}))
            for media, media_spec in content.items()
        )
        headers = ", ".join(response.get("headers", {}))
        description = response["description"] + (f" Headers: {headers}." if headers else "")
        rows.append({"status": status, "description": description, "body": body})
    return rows


def render_docs(spec: dict[str, Any]) -> str:
    """The whole documentation page for ``spec``."""
    tags = {
        tag["name"]: {**tag, "description": tag.get("description", ""), "operations": []}
        for tag in spec.get("tags", [])
    }
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            body, example = _body(operation)
            tag = operation.get("tags", ["Other"])[0]
            tags.setdefault(tag, {"name": tag, "description": "", "operations": []})
            tags[tag]["operations"].append(
                {
                    "id": operation.get("operationId", f"{method}-{path}"),
                    "method": method,
                    "path": path,
                    "summary": operation.get("summary", ""),
                    "description": _prose(operation.get("description", "")),
                    "parameters": _parameter_rows(operation.get("parameters", [])),
                    "body": body,
                    "example": example,
                    "responses": _responses(operation),
                }
            )
    schemas = [
        _schema_rows(name, schema)
        for name, schema in sorted(spec.get("components", {}).get("schemas", {}).items())
    ]
    return render_template_string(
        _TEMPLATE,
        info=spec["info"],
        openapi=spec["openapi"],
        intro=_prose(spec["info"].get("description", "")),
        tags=[tag for tag in tags.values() if tag["operations"]],
        schemas=schemas,
    )

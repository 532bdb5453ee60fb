"""marshmallow schemas of every payload that crosses the boundary; also the OpenAPI's source."""

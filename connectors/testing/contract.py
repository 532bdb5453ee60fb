"""Checking what a connector sends (and what its mocks answer) against a platform's contract.

Every request recorded by ``responses`` is validated with openapi-core: path, method, query and
header parameters, security and body. Answers are validated too when the contract documents
their status, so that the mocks cannot drift from the platform either.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_core.templating.responses.exceptions import ResponseNotFound

__all__ = ["ContractCheck", "load_contract", "read_document"]

# openapi-core decodes only the JSON types it knows; RFC 9457 problems are JSON too.
MEDIA_TYPES: dict[str, Any] = {"application/problem+json": json.loads}


def read_document(path: Path) -> dict[str, Any]:
    """An OpenAPI document, JSON or YAML."""
    text = path.read_text()
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


def load_contract(
    path: Path,
    server_url: str,
    *,
    adapt: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    validate_document: bool = True,
) -> OpenAPI:
    """The contract at ``path``, served at ``server_url``.

    ``adapt`` may rewrite the document first (openapi-core cannot check ``oauth2`` schemes: a
    connector presents such a token as an HTTP bearer token, RFC 6750, which it can check).
    ``validate_document=False`` takes a published document as it is, even where the OpenAPI
    validator would reject it.
    """
    document = read_document(path)
    document["servers"] = [{"url": server_url}]
    if adapt is not None:
        document = adapt(document)
    config = Config(extra_media_type_deserializers=MEDIA_TYPES)
    if not validate_document:
        config = Config(spec_validator_cls=None, extra_media_type_deserializers=MEDIA_TYPES)
    return OpenAPI.from_dict(document, config=config)


@dataclass
class ContractCheck:
    """Validates recorded exchanges against one contract."""

    api: OpenAPI

    def check_request(self, request: requests.PreparedRequest) -> None:
        """Raise the openapi-core error if ``request`` does not follow the contract."""
        self.api.validate_request(RequestsOpenAPIRequest(request))

    def check_exchange(self, request: requests.PreparedRequest, response: Any) -> None:
        """Validate the request, and the answer when its status is documented."""
        self.check_request(request)
        if not isinstance(response, requests.Response):
            return  # a simulated network failure: no answer to check
        # A status the contract does not list (a 503 raised on purpose) has nothing to check.
        with contextlib.suppress(ResponseNotFound):
            self.api.validate_response(
                RequestsOpenAPIRequest(request), RequestsOpenAPIResponse(response)
            )

    def check_calls(self, calls: Any) -> int:
        """Validate every call ``responses`` recorded; returns how many there were."""
        for call in calls:
            self.check_exchange(call.request, call.response)
        return len(calls)

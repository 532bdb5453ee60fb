"""Checking what a connector sends (and what our mocks answer) against a platform's contract.

Every request recorded by ``responses`` is validated with openapi-core: path, method, query and
header parameters, security and body. Answers are validated too when the contract documents
their status, so that the mocks cannot drift from the platform either.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import requests
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_core.templating.responses.exceptions import ResponseNotFound

# Each connector package carries the contract of the platform it speaks.
CONNECTORS_DIR = Path(__file__).resolve().parents[2] / "connectors"
PARTNER_CONTRACT = CONNECTORS_DIR / "timerepublik" / "contract" / "timebank-partner-api.yaml"
KOMUNITIN_CONTRACT = CONNECTORS_DIR / "komunitin" / "contract" / "komunitin-accounting-openapi.json"


def _partner_spec(server_url: str) -> dict[str, Any]:
    spec = yaml.safe_load(PARTNER_CONTRACT.read_text())
    spec["servers"] = [{"url": server_url}]
    # openapi-core cannot check oauth2 schemes; an OAuth 2 access token is presented as an
    # HTTP bearer token (RFC 6750), which it can check.
    spec["components"]["securitySchemes"]["partner"] = {"type": "http", "scheme": "bearer"}
    return spec


def _komunitin_spec(server_url: str) -> dict[str, Any]:
    spec = json.loads(KOMUNITIN_CONTRACT.read_text())
    spec["servers"] = [{"url": server_url}]
    return spec


# openapi-core decodes only the JSON types it knows; RFC 9457 problems are JSON too.
MEDIA_TYPES = {"application/problem+json": json.loads}


@cache
def partner_api(server_url: str) -> OpenAPI:
    """The partner contract, served at ``server_url``."""
    return OpenAPI.from_dict(
        _partner_spec(server_url), config=Config(extra_media_type_deserializers=MEDIA_TYPES)
    )


@cache
def komunitin_api(server_url: str) -> OpenAPI:
    """Komunitin's published contract, served at ``server_url``.

    The document is generated from Komunitin's test suite and has operations without any
    response, which the spec validator rejects: it is used as published, unvalidated.
    """
    config = Config(spec_validator_cls=None, extra_media_type_deserializers=MEDIA_TYPES)
    return OpenAPI.from_dict(_komunitin_spec(server_url), config=config)


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

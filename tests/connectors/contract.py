"""The two vendored contracts, loaded for the connectors' tests (see connectors.testing)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from openapi_core import OpenAPI

from connectors.testing.contract import ContractCheck, load_contract

__all__ = [
    "KOMUNITIN_CONTRACT",
    "PARTNER_CONTRACT",
    "ContractCheck",
    "komunitin_api",
    "partner_api",
]

# Each connector package carries the contract of the platform it speaks.
CONNECTORS_DIR = Path(__file__).resolve().parents[2] / "connectors"
PARTNER_CONTRACT = CONNECTORS_DIR / "timerepublik" / "contract" / "timebank-partner-api.yaml"
KOMUNITIN_CONTRACT = CONNECTORS_DIR / "komunitin" / "contract" / "komunitin-accounting-openapi.json"


def oauth2_as_bearer(document: dict[str, Any]) -> dict[str, Any]:
    """The partner's OAuth 2 scheme as the HTTP bearer scheme openapi-core can check."""
    document["components"]["securitySchemes"]["partner"] = {"type": "http", "scheme": "bearer"}
    return document


@cache
def partner_api(server_url: str) -> OpenAPI:
    """The partner contract, served at ``server_url``."""
    return load_contract(PARTNER_CONTRACT, server_url, adapt=oauth2_as_bearer)


@cache
def komunitin_api(server_url: str) -> OpenAPI:
    """Komunitin's published contract, served at ``server_url``.

    The document is generated from Komunitin's test suite and has operations without any
    response, which the spec validator rejects: it is used as published, unvalidated.
    """
    return load_contract(KOMUNITIN_CONTRACT, server_url, validate_document=False)

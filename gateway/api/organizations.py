"""``/organizations``: cooperatives and companies that exchange hours (``admin``)."""

from __future__ import annotations

from typing import Any

from flask import url_for

from gateway.api.blueprint import bp
from gateway.api.idempotency import idempotent
from gateway.api.openapi import operation
from gateway.api.payloads import load_json
from gateway.api.representations import organization_document, organization_list_document
from gateway.auth.resource import require_oauth
from gateway.db import db
from gateway.ledger import services as ledger
from gateway.ledger.models import Organization
from gateway.problems import Problem
from schemas.ledger import OrganizationCreateSchema, OrganizationListSchema, OrganizationSchema


@bp.get("/organizations")
@operation(
    summary="Every organization",
    tag="Organizations",
    scopes=["admin"],
    responses={200: ("Organizations by name, each with its account.", OrganizationListSchema)},
)
@require_oauth("admin")
def list_organizations() -> dict[str, Any]:
    """Every organization."""
    return organization_list_document(ledger.list_organizations())


@bp.post("/organizations")
@operation(
    summary="Create an organization and its account",
    tag="Organizations",
    scopes=["admin"],
    body=OrganizationCreateSchema,
    idempotent=True,
    example={"name": "Cooperativa Sociale Il Grillo", "kind": "cooperative", "municipio": 4},
    responses={
        201: ("The new organization.", OrganizationSchema),
        400: ("No Idempotency-Key, or a body that is not JSON.", None),
        409: ("A request with this Idempotency-Key is still running.", None),
        415: ("The body is not JSON.", None),
        422: ("Invalid fields, or an Idempotency-Key reused for another request.", None),
    },
    response_headers={201: {"Location": "The organization's URL."}},
)
@require_oauth("admin")
@idempotent
def create_organization() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Create an organization (views under @idempotent do not commit)."""
    data = load_json(OrganizationCreateSchema())
    organization = ledger.create_organization(
        name=data["name"].strip(),
        kind=data["kind"],
        municipio=data["municipio"],
        credit_limit_minutes=data.get("credit_limit_minutes", "default"),
    )
    location = url_for("api.get_organization", organization_id=organization.id)
    return organization_document(organization), 201, {"Location": location}


@bp.get("/organizations/<organization_id>")
@operation(
    summary="One organization",
    tag="Organizations",
    scopes=["admin"],
    responses={
        200: ("The organization and its account.", OrganizationSchema),
        404: ("No such organization.", None),
    },
)
@require_oauth("admin")
def get_organization(organization_id: str) -> dict[str, Any]:
    """One organization."""
    organization = db.session.get(Organization, organization_id)
    if organization is None:
        raise Problem(
            404,
            f"There is no organization {organization_id}.",
            title="Organization not found",
            type="organization-not-found",
            code="organization_not_found",
        )
    return organization_document(organization)

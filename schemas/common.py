"""Shapes every API shares: the RFC 9457 problem document."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields


class ProblemSchema(Schema):
    """An RFC 9457 problem: ``application/problem+json`` of every error on the API."""

    class Meta:
        # Problems carry extension members (code, errors, balance_minutes, ...).
        unknown = INCLUDE

    type = fields.String(
        required=True,
        metadata={
            "description": "A URI naming the kind of problem (about:blank when generic).",
            "example": "https://gateway.milanoseilaltro.it/problems/credit-limit-exceeded",
        },
    )
    title = fields.String(required=True, metadata={"example": "Credit limit exceeded"})
    status = fields.Integer(required=True, metadata={"example": 422})
    detail = fields.String(metadata={"description": "What went wrong, in one sentence."})
    instance = fields.String(allow_none=True, metadata={"example": "/api/v1/transactions"})
    code = fields.String(
        metadata={"description": "A stable machine code.", "example": "credit_limit_exceeded"}
    )
    errors = fields.Dict(
        metadata={
            "description": "Field messages of an invalid request, keyed like the request body.",
            "example": {
                "minutes": ["Must be greater than or equal to 1 and less than or equal to 14400."]
            },
        }
    )

"""The ``api`` blueprint (``/api/v1``) and the handlers that answer its errors as problems."""

from __future__ import annotations

from flask import Blueprint, Response
from marshmallow import ValidationError

from gateway.api.errors import problem_for
from gateway.db import db
from gateway.ledger.errors import LedgerError
from gateway.problems import Problem, problem_response

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.errorhandler(LedgerError)
@bp.errorhandler(ValidationError)
def _domain_error(exc: Exception) -> Response:
    db.session.rollback()
    return problem_response(problem_for(exc) or Problem(500))

"""Every problem type URI the gateway answers with is in one case style: kebab case."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from gateway.ledger import errors as ledger_errors
from gateway.problems import TYPE_SLUG, Problem, problem_type

ROOT = Path(__file__).resolve().parents[1]


def _literal_types() -> dict[str, str]:
    """Each ``type="..."`` given to a problem in the gateway's source, with where it is."""
    found = {}
    for path in sorted((ROOT / "gateway").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if not name.endswith("Problem"):
                continue
            for keyword in node.keywords:
                if keyword.arg == "type" and isinstance(keyword.value, ast.Constant):
                    found[keyword.value.value] = f"{path.relative_to(ROOT)}:{node.lineno}"
    return found


LITERALS = _literal_types()
LEDGER_CODES = sorted(
    cls.code
    for cls in vars(ledger_errors).values()
    if isinstance(cls, type) and issubclass(cls, ledger_errors.LedgerError)
)


def test_the_source_gives_problem_types():
    # The scan must see the types it checks: one of each kind of caller, at least.
    assert {"csrf", "invalid-signature", "missing-token", "not-ready"} <= set(LITERALS)


@pytest.mark.parametrize("slug", sorted(LITERALS))
def test_every_literal_problem_type_is_kebab_case(slug):
    assert TYPE_SLUG.fullmatch(slug), f"{slug!r} at {LITERALS[slug]}"


@pytest.mark.parametrize("code", LEDGER_CODES)
def test_every_ledger_refusal_has_a_kebab_case_type(code):
    assert TYPE_SLUG.fullmatch(problem_type(code))


@pytest.mark.parametrize("code", ["invalid_request", "unauthorized_client", "access_denied"])
def test_protocol_error_codes_become_kebab_case_types(code):
    body = Problem(400, type=problem_type(code)).type
    assert body == code.replace("_", "-")


@pytest.mark.parametrize("slug", ["credit_limit_exceeded", "Invalid-Token", "trailing-", ""])
def test_a_problem_in_another_style_is_refused_where_it_is_made(slug):
    with pytest.raises(ValueError, match="kebab case"):
        Problem(400, type=slug)

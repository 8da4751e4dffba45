"""One home for rotator's keys: no ``rotator.dev/...`` string is spelled outside models/keys.py.

A key copied into a second module drifts the day one copy is renamed, and the operator then writes
an annotation its other half no longer reads. Docstrings may name keys (they explain them); code
must import them.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "rotator"
HOME = PACKAGE / "models" / "keys.py"
# "rotator.dev/..." as a key of its own; "kopf.rotator.dev/" and "kwok.rotator.dev/" are other
# domains (Kopf's bookkeeping, the test nodes' faults).
KEY = re.compile(r"(?<![\w.-])rotator\.dev(/|$)")


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the Constant nodes that are docstrings (of modules, classes, functions, attributes)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        for statement in body:
            if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
                found.add(id(statement.value))
    return found


def spelled_keys(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string constant outside docstrings that spells a rotator.dev key."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and KEY.search(node.value)
    ]


def test_the_scan_finds_a_spelled_key_and_ignores_docstrings_and_other_domains() -> None:
    source = (
        '"""Module doc naming rotator.dev/force-rotate."""\n'
        'A = "rotator.dev/owner"\n'
        "B = f'.metadata[\"rotator.dev/rotation-id\"]'\n"
        'C = "kwok.rotator.dev/fault"\n'
        'def f() -> None:\n    """rotator.dev/x in a docstring."""\n'
    )
    assert [line for line, _ in spelled_keys(source)] == [2, 3]


@pytest.mark.parametrize(
    "module",
    sorted(p for p in PACKAGE.rglob("*.py") if p != HOME),
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_no_module_spells_a_key_that_models_keys_owns(module: Path) -> None:
    assert spelled_keys(module.read_text()) == [], f"import it from rotator.models.keys: {module}"

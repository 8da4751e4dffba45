"""No code path writes status blind (issue 9, item 2): the one place that names a ``/status``
subresource is ``Kube.patch_status``, whose every caller passes the resourceVersion it read
(policies: engine/draft.py; stores: engine/store_health.py; both tested in tests/engine)."""

from __future__ import annotations

import ast
from pathlib import Path

import rotator

PACKAGE = Path(rotator.__file__).parent


def status_strings() -> list[str]:
    """Every string literal in the operator (the emulator aside) that ends in ``/status``, by file."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "sandbox" in path.relative_to(PACKAGE).parts:
            continue  # the API server emulator serves /status, it does not write it
        tree = ast.parse(path.read_text())
        procfs = {  # f"/proc/{pid}/status": a process's, not an object's
            id(part)
            for node in ast.walk(tree)
            if isinstance(node, ast.JoinedStr)
            and isinstance(first := node.values[0], ast.Constant)
            and str(first.value).startswith("/proc/")
            for part in node.values
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value.endswith("/status")
                and id(node) not in procfs
            ):
                found.append(f"{path.relative_to(PACKAGE)}:{node.value}")
    return found


def test_only_the_conditional_status_patch_names_the_status_subresource() -> None:
    assert status_strings() == ["kube.py:/status"]


def test_every_status_write_passes_a_resource_version() -> None:
    callers = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("patch_status", "patch_policy_status")
            ):
                keywords = {k.arg for k in node.keywords}
                callers.append((str(path.relative_to(PACKAGE)), "resource_version" in keywords))
    assert ("engine/draft.py", True) in callers
    assert ("engine/store_health.py", True) in callers
    assert all(passed for _, passed in callers), callers

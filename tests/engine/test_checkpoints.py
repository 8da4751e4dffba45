"""The crash points are the code's: every Checkpoint is passed by a rotation or a rollback, and
no code passes a checkpoint that is not in the enum (the crash tests parametrise over it)."""

from __future__ import annotations

import ast
from pathlib import Path

import rotator
from rotator.models.keys import FORCE_ROTATE
from rotator.steps.checkpoints import Checkpoint
from tests.engine.harness import DEPLOYMENT, NS, EngineBench

PACKAGE = Path(rotator.__file__).parent


def test_a_rotation_and_a_rollback_pass_every_checkpoint_in_order(bench: EngineBench) -> None:
    bench.seed(progress_deadline=1)
    bench.rotate_to_end()
    bench.checkpoints.clear()
    bench.annotate(FORCE_ROTATE, "1")
    bench.rotate_to_end()
    forward = list(dict.fromkeys(bench.checkpoints))
    assert forward == [c for c in Checkpoint if not c.during_rollback]

    bench.checkpoints.clear()
    bench.server.set_fail_readiness("Deployment", NS, DEPLOYMENT)
    bench.annotate(FORCE_ROTATE, "2")
    bench.rotate_to_end()
    rollback = [c for c in dict.fromkeys(bench.checkpoints) if Checkpoint(c).during_rollback]
    assert rollback == [c for c in Checkpoint if c.during_rollback]


def test_checkpoints_are_only_ever_passed_as_enum_members() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "checkpoint"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in ("ctx", "deps")  # the hook as steps and engine call it
                and node.args
                and not (
                    isinstance(node.args[0], ast.Attribute)
                    and isinstance(node.args[0].value, ast.Name)
                    and node.args[0].value.id == "Checkpoint"
                )
                and not (isinstance(node.args[0], ast.Call) and "before_persist" in ast.dump(node.args[0]))
            ):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == [], "checkpoint() called with something other than a Checkpoint member"

"""Kill the operator at every step boundary (a real process exit with nothing flushed), restart
it, and check the crash rules of DESIGN §1: the rotation completes, exactly one new store
version exists for it, consumers restarted once, and the old credential was never revoked
before verification passed. On the emulator and on the real control plane (see REAL_POINTS)."""

from __future__ import annotations

import pytest

from rotator.steps.checkpoints import Checkpoint
from tests.fixtures.kube_backends import EMULATOR, REAL
from tests.fixtures.rotation import STEP_BOUNDARIES, Bench

# From the code: a checkpoint added to rotator.steps.checkpoints is crash-tested automatically
# (and tests/engine/test_checkpoints.py proves the code passes every one of them).
FORWARD_POINTS = [str(point) for point in Checkpoint if not point.during_rollback]
ROLLBACK_POINTS = [str(point) for point in Checkpoint if point.during_rollback]

# The real control plane runs a representative subset: every step boundary (each forward step's
# last point before its status write) and every rollback point, 11 of the 24. A point costs 8
# to 13 s there (a namespace, two Deployment rollouts by controller-manager, two operator
# starts; 6 to 8 s on the emulator): the full matrix would add some 5.5 minutes to the real
# worker of a quiet run, and took 15 minutes on the 2-core machine under load, where the subset
# takes under 3. The points between two writes inside a step test the engine's resume logic,
# which does not depend on the API server, and run in full on the emulator.
REAL_FORWARD_POINTS = STEP_BOUNDARIES
REAL_ROLLBACK_POINTS = ROLLBACK_POINTS


def on_backends(emulator: list[str], real: list[str]) -> list[object]:
    """(kube_backend, point) pairs: every emulator point, then the real ones."""
    return [(EMULATOR, point) for point in emulator] + [(REAL, point) for point in real]


def crash_during_forced_rotation(bench: Bench, point: str) -> None:
    bench.crash_in_forced_rotation(point)
    # The invariant at the moment of the crash: the old credential is alive unless verified.
    rotation = bench.status().get("rotation") or {}
    if bench.kv_value(1) is None:
        assert rotation.get("verifiedAt"), f"old credential revoked before verification (crash at {point})"


@pytest.mark.parametrize(
    ("kube_backend", "point"), on_backends(FORWARD_POINTS, REAL_FORWARD_POINTS), indirect=["kube_backend"]
)
def test_crash_at_step_boundary_then_resume_completes_the_rotation(bench: Bench, point: str) -> None:
    bench.seed()
    bench.start_armed(point)
    bench.wait_rotations(1)
    generation = bench.deployment_generation()

    crash_during_forced_rotation(bench, point)

    bench.operator.start()
    status = bench.wait_rotations(2).get("status") or {}
    assert status["history"][0]["result"] == "Succeeded"
    assert sorted(bench.kv_versions()) == [1, 2], "a crash produced a second new credential"
    assert bench.kv_value(1) is None
    assert bench.secret_value() == bench.kv_value(2)
    assert bench.deployment_generation() == generation + 1, "consumers were restarted more than once"
    bench.wait_pods_on("2")


@pytest.mark.parametrize(
    ("kube_backend", "point"), on_backends(ROLLBACK_POINTS, REAL_ROLLBACK_POINTS), indirect=["kube_backend"]
)
def test_crash_during_rollback_still_restores_the_old_credential(bench: Bench, point: str) -> None:
    bench.seed(progress_deadline=2)
    bench.start_armed(point)
    bench.wait_rotations(1)
    old = bench.secret_value()
    bench.set_fail_readiness()

    crash_during_forced_rotation(bench, point)
    assert bench.kv_value(1) == old

    bench.operator.start()
    status = bench.wait_rotations(2).get("status") or {}
    assert status["history"][0]["result"] == "RolledBack"
    # 2 was the new credential (destroyed); 3 republishes the old value so readers of "latest"
    # (ESO, VSO, Vault Agent) see the working credential again.
    assert sorted(bench.kv_versions()) == [1, 2, 3]
    assert bench.kv_value(1) == old, "the old credential was revoked during a rollback"
    assert bench.kv_value(2) is None
    assert bench.kv_value(3) == old
    assert bench.secret_value() == old

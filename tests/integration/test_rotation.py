"""The six-step rotation end to end: real OpenBao, the operator as a real process, and each test
on both Kubernetes backends: the cluster emulator with its rollout simulator, and the real
control plane (kube-apiserver, controller-manager rolling the Deployment onto kwok's nodes, the
operator with the manifests' RBAC). Every test also passes the leak scan in the bench's teardown
(no generated value in logs, Events, status or metrics)."""

from __future__ import annotations

import re
import time

import pytest

from tests.fixtures.kube_backends import BACKENDS
from tests.fixtures.rotation import Bench

pytestmark = pytest.mark.parametrize("kube_backend", BACKENDS, indirect=True)


def history(status: dict) -> list[dict]:  # type: ignore[type-arg]
    return list(status.get("history") or [])


def condition(status: dict, type_: str) -> dict:  # type: ignore[type-arg]
    return next(c for c in status.get("conditions") or [] if c["type"] == type_)


def metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_first_rotation_then_forced_rotation_end_to_end(bench: Bench) -> None:
    bench.seed()
    bench.operator.start()
    status = bench.wait_rotations(1).get("status") or {}
    assert history(status)[0]["result"] == "Succeeded"
    assert history(status)[0]["reason"] == "Initial"
    assert status["currentVersion"] == "1"
    first = bench.secret_value()
    assert first is not None
    assert first == bench.kv_value(1)
    assert len(first) == 32
    assert re.fullmatch(r"[A-Za-z0-9]{32}", first)

    # A timestamp asks for a credential issued no earlier than it: "now" (a past one is satisfied).
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    bench.force(stamp)
    status = bench.wait_rotations(2).get("status") or {}
    entry = history(status)[0]
    assert entry["result"] == "Succeeded"
    assert entry["reason"] == "Forced"
    assert entry["version"] == "2"
    assert status["phase"] == "Idle"
    assert status["currentVersion"] == "2"
    assert status["lastHandledForceRotate"] == stamp
    assert condition(status, "Ready")["status"] == "True"
    assert condition(status, "Degraded")["status"] == "False"
    assert condition(status, "Rotating")["status"] == "False"

    # Store, Secret and pods agree on version 2; version 1 is revoked; previousKey is gone.
    second = bench.secret_value()
    assert second == bench.kv_value(2)
    assert second != first
    assert bench.kv_value(1) is None
    assert bench.secret_value("password.previous") is None
    secret = bench.secret() or {}
    annotations = secret["metadata"]["annotations"]
    assert annotations["rotator.dev/version"] == "2"
    assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "rotator"
    assert not secret["metadata"].get("ownerReferences"), (
        "deletionPolicy Retain: the Secret outlives the policy"
    )
    bench.wait_pods_on("2")
    assert sorted(bench.kv_versions()) == [1, 2]

    metrics = bench.metrics_text()
    labels = {"namespace": bench.namespace, "policy": "demo-db"}
    assert metric(metrics, "rotator_rotations_total", **labels, result="succeeded", reason="Forced") == 1
    assert metric(metrics, "rotator_rotations_total", **labels, result="succeeded", reason="Initial") == 1
    assert metric(metrics, "rotator_rotation_in_progress", **labels) == 0
    assert metric(metrics, "rotator_last_success_timestamp_seconds", **labels) > 0
    assert metric(metrics, "rotator_next_rotation_timestamp_seconds", **labels) > 0
    assert metric(metrics, "rotator_store_requests_total", store="vault", operation="write", result="ok") == 2
    assert metric(metrics, "rotator_restarts_total", kind="Deployment") == 2
    # The first restart reads the Deployment; its patch labels it a consumer, and from then on
    # the label-selected watch feeds every read (verify's looks, the second rotation's restart).
    assert metric(metrics, "rotator_kube_requests_total", verb="get", resource="deployments") == 1
    reasons = set(bench.event_reasons())
    assert {"RotationStarted", "WorkloadRestarted", "RotationSucceeded"} <= reasons
    assert "RestartTargetNotConsumingSecret" not in reasons


def test_dual_window_keeps_old_and_new_valid_until_grace_period_ends(bench: Bench) -> None:
    bench.seed(extra_spec={"revoke": {"gracePeriod": "4s"}})
    bench.operator.start()
    bench.wait_rotations(1)
    old = bench.kv_value(1)
    bench.force()
    bench.wait(lambda o: ((o.get("status") or {}).get("rotation") or {}).get("step") == "revoke", 30, "grace")
    # Verified, waiting for the grace period: both credentials readable, Secret carries both.
    assert bench.kv_value(1) == old
    assert bench.kv_value(2) == bench.secret_value()
    assert bench.secret_value("password.previous") == old
    rotation = bench.status()["rotation"]
    assert rotation["verifiedAt"]
    bench.wait_rotations(2)
    assert bench.kv_value(1) is None
    assert bench.secret_value("password.previous") is None


def test_each_force_value_triggers_exactly_one_rotation(bench: Bench) -> None:
    bench.seed()
    bench.operator.start()
    bench.wait_rotations(1)
    bench.force("a")
    bench.wait_rotations(2)
    bench.force("a")  # the same value again is not a new request
    # Several idle ticks (idle_resync is 1 s): nothing starts.
    bench.wait(lambda o: True, 0.1)
    time.sleep(3)
    assert len(history(bench.status())) == 2
    bench.force("b")
    bench.wait_rotations(3)
    assert [h["reason"] for h in history(bench.status())] == ["Forced", "Forced", "Initial"]
    assert sorted(bench.kv_versions()) == [1, 2, 3]


def test_failed_rollout_rolls_back_and_never_revokes_the_old_credential(bench: Bench) -> None:
    bench.seed(progress_deadline=2)
    bench.operator.start()
    bench.wait_rotations(1)
    old = bench.secret_value()
    bench.set_fail_readiness()
    bench.force()
    status = bench.wait_rotations(2).get("status") or {}
    entry = history(status)[0]
    assert entry["result"] == "RolledBack"
    assert entry["version"] == "1"
    assert status["currentVersion"] == "1"
    degraded = condition(status, "Degraded")
    assert degraded["status"] == "True"
    assert degraded["reason"] == "RotationRolledBack"
    assert "ProgressDeadlineExceeded" in degraded["message"] or "progress" in degraded["message"].lower()
    # The old credential is back in the Secret and still valid in the store; the new one is dead.
    assert bench.secret_value() == old
    assert bench.kv_value(1) == old
    assert bench.kv_value(2) is None
    assert bench.secret_value("password.previous") is None
    metrics = bench.metrics_text()
    assert metric(metrics, "rotator_rotations_total", result="rolled_back", reason="Forced") == 1
    assert "RotationRolledBack" in bench.event_reasons()
    # Once the fault clears, the rolled-back pods come up on the old version.
    bench.set_fail_readiness(False)
    bench.wait_pods_on("1")


def test_force_during_a_rotation_is_reported_not_queued(bench: Bench) -> None:
    bench.seed(extra_spec={"revoke": {"gracePeriod": "3s"}})
    bench.operator.start()
    bench.wait_rotations(1)
    bench.force("first")
    bench.wait(
        lambda o: ((o.get("status") or {}).get("rotation") or {}).get("step") == "revoke", 30, "revoke"
    )
    bench.force("during")
    bench.wait(
        lambda o: (o.get("status") or {}).get("lastHandledForceRotate") == "during", 30, "force recorded"
    )
    status = bench.wait_rotations(2).get("status") or {}
    assert status["history"][0]["reason"] == "Forced"
    time.sleep(3)  # idle ticks: the absorbed force must not start another rotation
    assert len(bench.status()["history"]) == 2
    assert "ForceRotateIgnored" in bench.event_reasons()

"""Failures before revoke roll back to the old credential, which is never revoked."""

from __future__ import annotations

from rotator.models import Phase, RotationResult, Step, reasons
from rotator.models.keys import FORCE_ROTATE, ROTATION_ID
from tests.engine.harness import DEPLOYMENT, GRACE, NS, EngineBench


def rotated_once(bench: EngineBench, **spec: object) -> str:
    bench.seed(progress_deadline=1, **spec)
    bench.rotate_to_end()
    old = bench.store_value("1")
    assert old is not None
    bench.annotate(FORCE_ROTATE, "again")
    bench.tick(60)
    return old


def test_failed_rollout_rolls_back_and_pauses_scheduled_triggers(bench: EngineBench) -> None:
    old = rotated_once(bench)
    bench.server.set_fail_readiness("Deployment", NS, DEPLOYMENT)
    runs = bench.rotate_to_end()
    assert any(run.step == Step.ROLLBACK for run in runs)
    rolling_back = next(run for run in runs if run.step == Step.ROLLBACK)
    assert rolling_back.status.phase is Phase.ROLLING_BACK
    assert rolling_back.condition("Degraded")[:2] == ("True", reasons.VERIFY_FAILED)
    end = runs[-1]
    assert end.status.last_result is RotationResult.ROLLED_BACK
    assert end.status.current_version == "1"
    assert end.condition("Degraded")[:2] == ("True", reasons.ROTATION_ROLLED_BACK)
    assert (reasons.ROTATION_ROLLED_BACK, True) in [(r, w) for r, _, w in end.events]
    assert end.status.retry_not_before == (bench.now + bench.settings.pause_after_failure).replace(
        microsecond=0
    )
    assert bench.store_value("1") == old, "the old credential is what consumers return to"
    assert bench.store_value("2") is None, "the new version is destroyed"
    assert bench.store.failed == ["2"]
    assert bench.secret_value() == old
    template = bench.deployment()["spec"]["template"]["metadata"]["annotations"]
    assert template[ROTATION_ID].endswith("-rollback")
    assert end.requeue == bench.settings.idle_resync
    bench.server.set_fail_readiness("Deployment", NS, DEPLOYMENT, False)
    bench.edit_spec(credential={"password": {"length": 40}})  # a trigger that still holds
    bench.tick(600)
    paused = bench.reconcile()
    assert paused.step is None, "retrying at once would restart every consumer again"
    assert "paused after a failed rotation" in paused.condition("Ready")[2]
    bench.tick(3600)
    assert bench.reconcile().step == Step.GENERATE


def test_verify_timeout_rolls_back(bench: EngineBench) -> None:
    old = rotated_once(bench, verify={"timeout": "5s"})
    bench.server.set_fail_readiness("Deployment", NS, DEPLOYMENT)
    bench.edit_spec(verify={"timeout": "5s"})
    runs = bench.rotate_to_step(Step.VERIFY)
    bench.kube.merge_patch(
        f"/apis/apps/v1/namespaces/{NS}/deployments/{DEPLOYMENT}", {"spec": {"progressDeadlineSeconds": 600}}
    )
    waiting = bench.reconcile()
    # stable while it waits (no status write per rollout event), kubectl's counts at the timeout
    assert waiting.condition("Rotating")[2] == f"verify: Deployment {DEPLOYMENT} is rolling out"
    bench.tick(10)
    timed_out = bench.reconcile()
    assert timed_out.step == Step.ROLLBACK
    assert timed_out.status.rotation is not None
    assert "timed out after 5s: Waiting for deployment" in (timed_out.status.rotation.last_error or "")
    end = bench.rotate_to_end()[-1]
    assert end.status.last_result is RotationResult.ROLLED_BACK
    assert bench.store_value("1") == old
    assert runs


def test_first_rotation_failing_keeps_the_only_credential(bench: EngineBench) -> None:
    bench.seed(progress_deadline=1)
    bench.server.set_fail_readiness("Deployment", NS, DEPLOYMENT)
    end = bench.rotate_to_end()[-1]
    assert end.status.last_result is RotationResult.ROLLED_BACK
    assert "no previous credential" in " ".join(m for _, m, _ in end.events)
    assert bench.store_value("1") is not None
    assert bench.secret_value() == bench.store_value("1")


def test_store_refusal_before_revoke_rolls_back_instead_of_retrying(bench: EngineBench) -> None:
    old = rotated_once(bench)
    bench.reconcile()  # start
    bench.reconcile()  # generate
    bench.store.versions[2].value = None  # the pending version vanished behind our back
    run = bench.reconcile()  # dual: promote refuses (version gone)
    assert run.step == Step.ROLLBACK
    assert reasons.STORE_ERROR in run.reasons
    end = bench.rotate_to_end()[-1]
    assert end.status.last_result is RotationResult.ROLLED_BACK
    assert bench.store_value("1") == old


def test_revoke_refused_without_verification_ends_failed_never_revokes(bench: EngineBench) -> None:
    old = rotated_once(bench, revoke=GRACE)
    bench.rotate_to_revoke()
    status = bench.status()
    assert status.rotation is not None
    raw = status.rotation.to_patch()
    raw.pop("verifiedAt")
    bench.set_status({"rotation": {**raw, "verifiedAt": None}})
    end = bench.reconcile()
    assert end.status.last_result is RotationResult.FAILED
    assert end.status.phase is Phase.FAILED
    assert end.condition("Degraded")[:2] == ("True", reasons.ROTATION_FAILED)
    assert bench.store_value("1") == old
    assert (
        bench.metrics.rotations_total.labels(
            namespace="shop", policy="demo-db", result="failed", reason="Forced"
        )._value.get()
        == 1
    )

"""An idle policy: adoption, ownership, drift repair, suspend, dry run, schedule; one reconcile each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from rotator.models import Phase, Step, reasons
from rotator.models.keys import FORCE_ROTATE, MANAGED_BY_LABEL
from tests.engine.harness import NS, SECRET, SETTINGS, EngineBench


@dataclass(frozen=True)
class Case:
    """(spec, status, store, cluster, clock) arranged -> (conditions, Events, requeue, step)."""

    arrange: Callable[[EngineBench], None]
    ready: tuple[str, str]
    events: list[str] = field(default_factory=list)
    requeue: float | None = 30.0
    step: Step | None = None
    message: str = ""


def foreign_path(bench: EngineBench) -> None:
    bench.seed()
    bench.store.seed("somebody-elses-value")
    bench.store.tags = {"team": "x"}


def foreign_path_adopted(bench: EngineBench) -> None:
    bench.seed()
    bench.store.seed("somebody-elses-value")
    bench.store.tags = {"team": "x"}
    bench.edit_spec(adopt=True)


def other_policys_path(bench: EngineBench) -> None:
    bench.seed()
    bench.store.seed("theirs-value-0001")
    bench.store.tags = {"managed-by": "rotator", "rotator.dev/owner": "other/policy"}
    bench.edit_spec(adopt=True)


def suspended_with_force(bench: EngineBench) -> None:
    bench.seed(suspend=True)
    bench.annotate(FORCE_ROTATE, "f1")


def dry_run_first(bench: EngineBench) -> None:
    bench.seed(dryRun=True)


CASES = {
    "new-path-starts-the-initial-rotation": Case(
        lambda b: b.seed(), ("Unknown", ""), [reasons.ROTATION_STARTED], 0.0, Step.GENERATE
    ),
    "foreign-path-refused": Case(
        foreign_path,
        ("False", reasons.STORE_NOT_OWNED),
        [reasons.STORE_NOT_OWNED],
        60.0,
        message="set spec.adopt: true to take it over",
    ),
    "foreign-path-adopted-when-asked": Case(
        foreign_path_adopted,
        ("True", reasons.READY),
        [reasons.STORE_ADOPTED, reasons.SECRET_DRIFT_REPAIRED],
        SETTINGS.resync_after("shop/demo-db"),  # idle and healthy: the long safety resync
    ),
    "another-policys-path-never-adopted": Case(
        other_policys_path,
        ("False", reasons.STORE_NOT_OWNED),
        [reasons.STORE_NOT_OWNED],
        60.0,
        message="another RotationPolicy owns it",
    ),
    "foreign-secret-refused-before-the-store": Case(
        lambda b: (b.seed(), b.foreign_secret()),
        ("False", reasons.SECRET_NOT_OWNED),
        [reasons.SECRET_NOT_OWNED],
        60.0,
        message=MANAGED_BY_LABEL,
    ),
    "suspended-ignores-and-records-a-force": Case(
        suspended_with_force,
        ("True", reasons.SUSPENDED),
        [reasons.FORCE_IGNORED],
        30.0,
        message="force ignored",
    ),
    "dry-run-reports-and-touches-nothing": Case(
        dry_run_first, ("True", reasons.DRY_RUN), [reasons.DRY_RUN], 30.0, message="would rotate (Initial)"
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_one_idle_reconcile(bench: EngineBench, name: str) -> None:
    case = CASES[name]
    case.arrange(bench)
    run = bench.reconcile()
    ready = run.status.condition("Ready")  # type: ignore[arg-type]
    assert ((str(ready.status), ready.reason) if ready else ("Unknown", "")) == case.ready
    assert run.reasons == case.events
    assert run.requeue == case.requeue
    assert run.step == case.step
    if case.message:
        assert ready is not None
        assert case.message in ready.message
    assert run.writes == 1
    assert bench.status() == run.status, "what the engine reports is what it wrote"


def test_dry_run_and_suspend_write_nothing_to_store_or_cluster(bench: EngineBench) -> None:
    dry_run_first(bench)
    bench.annotate(FORCE_ROTATE, "f1")
    run = bench.reconcile()
    assert run.status.last_dry_run is not None
    assert run.status.last_dry_run.would_rotate
    assert run.status.last_handled_force_rotate == "f1", "consumed: turning dryRun off must not act on it"
    assert bench.store.tags is None
    assert bench.store.versions == {}
    assert bench.secret() is None
    second = bench.reconcile()
    assert second.reasons == [reasons.DRY_RUN], "the force was handled: now only the first rotation is due"
    assert bench.reconcile().events == [], "the same report is not posted twice"
    bench.edit_spec(dryRun=False, suspend=True)
    assert bench.reconcile().condition("Ready")[1] == reasons.SUSPENDED
    assert bench.store.tags is None


def test_a_force_ignored_while_suspended_is_said_in_a_warning_event_once(bench: EngineBench) -> None:
    suspended_with_force(bench)
    run = bench.reconcile()
    [(reason, message, warning)] = run.events
    assert (reason, warning) == (reasons.FORCE_IGNORED, True)
    assert "force-rotate='f1'" in message
    assert "resuming will not rotate for it" in message
    assert bench.reconcile().events == [], "recorded as handled: said once"


def test_a_dry_run_keeps_its_latest_would_rotate_report(bench: EngineBench) -> None:
    """A forced dry run says "would rotate" and, the force handled, "no rotation" at the next
    look: lastDryRun keeps the first with its time; Ready says what the dry run decides now."""
    bench.seed(schedule={"interval": "10m"})
    bench.rotate_to_end()
    bench.edit_spec(dryRun=True)
    idle = bench.reconcile()
    assert idle.status.last_dry_run is not None
    assert not idle.status.last_dry_run.would_rotate, "nothing would rotate yet: that is reported"
    bench.tick(5)
    bench.annotate(FORCE_ROTATE, "f1")
    forced = bench.reconcile()
    report = forced.status.last_dry_run
    assert report is not None
    assert (report.would_rotate, report.reason, report.at) == (
        True,
        "Forced",
        bench.now.replace(microsecond=0),
    )
    [(reason, message, _)] = forced.events
    assert reason == reasons.DRY_RUN
    assert "turning dryRun off will not rotate for it" in message, "the absorbed force is said"
    bench.tick(2)
    after = bench.reconcile()
    assert after.status.last_dry_run == report, "a later 'no rotation' does not overwrite it"
    assert after.condition("Ready")[2].startswith("dry run: no rotation: next rotation at")
    assert after.reasons == [reasons.DRY_RUN], "what the dry run decides now is still posted"
    assert bench.reconcile().writes == 0, "an unchanged decision writes nothing"
    bench.tick(600)
    due = bench.reconcile()
    assert due.status.last_dry_run is not None
    assert (due.status.last_dry_run.reason, due.status.last_dry_run.at) == (
        "Due",
        bench.now.replace(microsecond=0),
    )
    bench.tick(30)
    assert bench.reconcile().status.last_dry_run == due.status.last_dry_run, "same decision: first time kept"


def test_drift_is_repaired_and_warned_once(bench: EngineBench) -> None:
    bench.seed()
    bench.rotate_to_end()
    secret = bench.secret()
    assert secret is not None
    secret["data"]["password"] = "ZWRpdGVk"  # "edited"
    bench.kube.replace_secret(NS, SECRET, secret)
    run = bench.reconcile()
    assert [(r, w) for r, _, w in run.events] == [(reasons.SECRET_DRIFT_REPAIRED, True)]
    assert bench.secret_value() == bench.store_value("1")
    assert bench.reconcile().events == []


def test_destroyed_or_unreadable_current_is_degraded_and_rotation_still_possible(bench: EngineBench) -> None:
    bench.seed()
    bench.rotate_to_end()
    bench.store.versions[1].value = None
    run = bench.reconcile()
    assert run.condition("Degraded")[:2] == ("True", reasons.CURRENT_UNREADABLE)
    assert "force a rotation" in run.condition("Degraded")[2]
    bench.annotate(FORCE_ROTATE, "recover")
    started = bench.reconcile()
    assert started.status.rotation is not None
    assert started.status.rotation.old_version is None, "a destroyed version is nothing to fall back to"


def test_idle_requeue_is_the_due_time_when_sooner_than_the_resync(bench: EngineBench) -> None:
    bench.seed(schedule={"interval": "10m"})
    end = bench.rotate_to_end()[-1]
    assert end.status.next_rotation_time is not None
    bench.now = end.status.next_rotation_time - timedelta(seconds=12)
    run = bench.reconcile()
    assert run.requeue == 12.0
    assert run.status.phase is Phase.IDLE
    assert run.condition("Ready")[2].startswith("next rotation at")


def test_an_unchanged_idle_policy_writes_no_status(bench: EngineBench) -> None:
    bench.seed()
    bench.rotate_to_end()
    bench.reconcile()
    assert bench.reconcile().writes == 0
    assert bench.reconcile().writes == 0


def test_invalid_spec_is_named_once_and_not_retried(bench: EngineBench) -> None:
    bench.seed()
    stored = bench.kube.get_policy(NS, "demo-db") or {}
    target = {"kind": "Deployment", "name": "a"}
    spec = {**stored["spec"], "restart": {"targets": [target, target]}}  # the CRD would refuse it
    run = bench.reconcile(spec=spec)
    assert run.condition("Ready")[:2] == ("False", reasons.INVALID_SPEC)
    assert "spec.restart.targets" in run.condition("Ready")[2]
    assert [(r, w) for r, _, w in run.events] == [(reasons.INVALID_SPEC, True)]
    assert run.requeue is None, "a spec change wakes the policy; nothing else will fix it"
    assert run.status.phase is Phase.IDLE
    assert bench.reconcile(spec=spec).events == []
    assert bench.store.tags is None


def test_a_hand_edited_status_is_held_not_guessed_at(bench: EngineBench) -> None:
    bench.seed()
    bench.reconcile()
    stored = (bench.kube.get_policy(NS, "demo-db") or {})["status"]
    edited = {**stored, "rotation": {**stored["rotation"], "step": "teleport"}}
    run = bench.reconcile(status=edited)
    assert run.condition("Ready")[:2] == ("False", reasons.INVALID_STATUS)
    assert "status.rotation.step" in run.condition("Ready")[2]
    assert run.requeue == bench.settings.permanent_error_recheck
    assert bench.store.versions == {}, "nothing acted on a guess"
    assert bench.status().condition("Ready") == run.status.condition("Ready")  # type: ignore[arg-type]
    assert bench.status().rotation == stored_rotation(stored), "the rest of status is left as it was"


def stored_rotation(raw: dict[str, object]) -> object:
    from rotator.models import RotationPolicyStatus

    return RotationPolicyStatus.from_raw(raw).rotation


def test_a_spec_made_invalid_mid_rotation_holds_the_rotation_and_revokes_nothing(bench: EngineBench) -> None:
    bench.seed()
    bench.rotate_to_end()
    bench.annotate("rotator.dev/force-rotate", "f")
    bench.rotate_to_step(Step.VERIFY)
    before = bench.status().rotation
    assert before is not None
    stored = bench.kube.get_policy(NS, "demo-db") or {}
    target = {"kind": "Deployment", "name": "a"}
    spec = {**stored["spec"], "restart": {"targets": [target, target]}}  # what an older CRD let in
    for _ in range(3):
        bench.tick(3600)
        run = bench.reconcile(spec=spec)
        assert run.condition("Ready")[:2] == ("False", reasons.INVALID_SPEC)
        assert run.status.rotation == before, "the rotation waits where it was"
    assert bench.store_value("1") is not None, "the old credential is never revoked unverified"


def test_a_held_policy_exports_no_next_rotation_so_it_is_never_overdue(bench: EngineBench) -> None:
    """RotatorRotationOverdue reads rotator_next_rotation_timestamp_seconds: a suspended or dry-run
    policy (nothing would rotate) must not have one, and says it is held."""
    labels = {"namespace": NS, "policy": "demo-db"}

    def exported() -> tuple[float | None, float | None]:
        registry = bench.metrics.registry
        return (
            registry.get_sample_value("rotator_next_rotation_timestamp_seconds", labels),
            registry.get_sample_value("rotator_policy_suspended", labels),
        )

    bench.seed(schedule={"interval": "10m"})
    end = bench.rotate_to_end()[-1]
    assert end.status.next_rotation_time is not None
    assert exported() == (pytest.approx(end.status.next_rotation_time.timestamp(), abs=1), 0.0)
    bench.edit_spec(suspend=True)
    bench.tick(3600)  # long past due
    bench.reconcile()
    assert exported() == (None, 1.0), "suspended: nothing due, so never overdue"
    bench.edit_spec(suspend=False)
    bench.edit_spec(dryRun=True)
    bench.reconcile()
    assert exported() == (None, 1.0), "dry run: nothing would rotate either"
    bench.edit_spec(dryRun=False)
    resumed = bench.rotate_to_end()[-1]
    assert resumed.status.history[0].reason == "Due", "released, the overdue rotation runs"
    assert resumed.status.next_rotation_time is not None
    assert exported() == (pytest.approx(resumed.status.next_rotation_time.timestamp(), abs=1), 0.0)

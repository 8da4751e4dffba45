"""A rotation step by step, in-process: what each reconcile writes, posts and asks for next."""

from __future__ import annotations

from datetime import timedelta

from rotator.models import Phase, RotationResult, Step, reasons
from rotator.models.keys import FORCE_ROTATE, ROTATION_ID
from rotator.sandbox import demo
from rotator.stores.fake import FakeStore
from rotator.tenancy.resolve import ResolvedStore
from rotator.workloads.kinds import workload_path
from tests.engine.harness import DEPLOYMENT, NS, T0, EngineBench, Run


def test_initial_rotation_walks_every_step_in_order(bench: EngineBench) -> None:
    bench.seed()
    first = bench.reconcile()
    assert first.reasons == [reasons.ROTATION_STARTED]
    assert first.requeue == 0.0
    assert first.status.phase is Phase.ROTATING
    rotation = first.status.rotation
    assert rotation is not None
    assert (rotation.id, rotation.step, rotation.old_version) == ("r1", Step.GENERATE, None)
    assert rotation.store_location == {
        "kind": "vault",
        "store": "RotationStore/vault",
        "address": "http://vault.invalid:8200",
        "mount": "secret",
        "path": "shop/demo-db",
    }
    assert bench.status() == first.status, "persisted before any side effect"
    assert bench.store.versions == {}

    runs = bench.rotate_to_end()
    steps = [r.status.rotation.step for r in runs if r.status.rotation is not None]
    # sync, restart and verify's first look run in dual's reconcile (advance.CHAINED): no status
    # write records them in between. Whether one records verify waiting depends on whether the
    # rollout was complete at that first look (then it chains on), so only the rest is asserted.
    assert steps[0] is Step.DUAL
    assert not {Step.SYNC, Step.RESTART} & set(steps)
    end = runs[-1].status
    assert end.phase is Phase.IDLE
    assert end.current_version == "1"
    assert end.last_result is RotationResult.SUCCEEDED
    # every step timed, sync included
    assert [t.step for t in end.history[0].steps or ()] == [
        Step.GENERATE,
        Step.DUAL,
        Step.SYNC,
        Step.RESTART,
        Step.VERIFY,
        Step.REVOKE,
    ]
    assert end.history[0].result is RotationResult.SUCCEEDED
    assert end.credential_created_at == bench.now.replace(microsecond=0), "whole seconds, as stored"
    assert end.next_rotation_time is not None
    assert bench.secret_value() == bench.store_value("1")
    template = bench.deployment()["spec"]["template"]["metadata"]["annotations"]
    assert template[ROTATION_ID] == "r1"
    everything = [reason for run in runs for reason in run.reasons]
    assert everything == [reasons.WORKLOAD_RESTARTED, reasons.ROTATION_SUCCEEDED], "one Event per change"
    said = [message for run in runs for _, message, _ in run.events] + [runs[-2].condition("Rotating")[2]]
    assert not [m for m in said if "none" in m], "the first credential has nothing to revoke: said so"
    assert said[-2].endswith("no old credential to revoke")
    due = f"next rotation at {end.next_rotation_time.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    assert runs[-1].condition("Ready") == ("True", reasons.READY, due)
    assert bench.reconcile(resync=False).writes == 0, "the idle look after says the same: no write"
    assert (
        bench.metrics.rotations_total.labels(
            namespace="shop", policy="demo-db", result="succeeded", reason="Initial"
        )._value.get()
        == 1
    )


def test_second_rotation_keeps_old_until_verified_then_revokes_it(bench: EngineBench) -> None:
    bench.seed(secret={"name": "demo-db-credentials", "key": "password", "previousKey": "password.previous"})
    bench.rotate_to_end()
    old = bench.store_value("1")
    bench.annotate(FORCE_ROTATE, "f1")
    bench.tick(60)
    started = bench.reconcile()
    assert started.status.rotation is not None
    assert started.status.rotation.reason == "Forced"
    assert started.status.last_handled_force_rotate == "f1"
    assert started.status.rotation.old_version == "1"
    seen_dual = False

    def check(run: Run) -> bool:
        nonlocal seen_dual
        rotation = run.status.rotation
        if rotation is not None and rotation.verified_at is None:
            assert bench.store_value("1") == old, "old credential revoked before verification"
        if rotation is not None and rotation.step in (Step.VERIFY, Step.REVOKE):
            seen_dual = seen_dual or bench.secret_value("password.previous") == old
        return rotation is None

    bench.rotate_until(check)
    assert seen_dual, "previousKey never carried the old value during the dual window"
    assert bench.store_value("1") is None
    assert bench.secret_value() == bench.store_value("2")
    assert bench.secret_value("password.previous") is None
    assert bench.status().current_version == "2"


def test_waiting_step_uses_the_poll_setting_and_records_no_error(bench: EngineBench) -> None:
    bench.seed()
    bench.server.set_fail_readiness("Deployment", NS, DEPLOYMENT)  # new pods never ready: verify waits
    runs = bench.rotate_to_step(Step.VERIFY)
    waiting = bench.reconcile()
    assert waiting.step == Step.VERIFY
    assert waiting.requeue == bench.settings.poll
    assert waiting.status.rotation is not None
    assert waiting.status.rotation.last_error is None
    assert runs


def test_grace_period_waits_and_requeues_for_the_remaining_time(bench: EngineBench) -> None:
    bench.seed(revoke={"gracePeriod": "90s"})
    runs = bench.rotate_to_step(Step.REVOKE)
    waiting = bench.reconcile()
    assert waiting.step == Step.REVOKE
    assert waiting.requeue == bench.settings.idle_resync, "a long wait is capped by the resync"
    assert waiting.status.rotation is not None
    verified_at = waiting.status.rotation.verified_at
    assert verified_at is not None
    bench.now = verified_at + timedelta(seconds=75)
    assert bench.reconcile().requeue == 15.0
    bench.tick(15)
    done = bench.reconcile()
    assert done.step is None
    assert done.status.last_result is RotationResult.SUCCEEDED
    assert runs


def test_force_during_rotation_is_absorbed_by_the_chain_once(bench: EngineBench) -> None:
    bench.seed()
    bench.reconcile()
    bench.annotate(FORCE_ROTATE, "during")
    run = bench.reconcile()
    assert reasons.FORCE_IGNORED in run.reasons
    message = next(m for r, m, _ in run.events if r == reasons.FORCE_IGNORED)
    assert "covered by the running rotation" in message
    assert run.status.last_handled_force_rotate == "during"
    assert reasons.FORCE_IGNORED not in bench.reconcile().reasons
    bench.rotate_to_end()
    after = bench.reconcile()
    assert after.status.rotation is None, "an absorbed force must not start a second rotation"


def test_suspend_during_rotation_lets_it_finish(bench: EngineBench) -> None:
    bench.seed()
    bench.reconcile()
    bench.edit_spec(suspend=True)
    end = bench.rotate_to_end()[-1]
    assert end.status.last_result is RotationResult.SUCCEEDED
    assert bench.reconcile().condition("Ready")[1] == reasons.SUSPENDED


def test_dry_run_set_mid_rotation_holds_the_step(bench: EngineBench) -> None:
    bench.seed()
    bench.reconcile()
    bench.reconcile()  # generate
    bench.edit_spec(dryRun=True)
    held = bench.reconcile()
    assert held.step == Step.DUAL
    assert held.condition("Rotating")[1] == reasons.DRY_RUN
    assert held.requeue == bench.settings.idle_resync
    assert bench.reconcile().events == [], "the hold is announced once"
    bench.edit_spec(dryRun=False)
    assert bench.rotate_to_end()[-1].status.last_result is RotationResult.SUCCEEDED


def test_store_switched_mid_rotation_is_refused_permanently(bench: EngineBench) -> None:
    bench.seed()
    bench.reconcile()
    aws = {"region": "us-east-1", "auth": {"accessKeySecretRef": {"name": "keys"}}}
    other = demo.vault_store(NS, "http://unused.invalid:8200", name="aws")
    other["spec"] = {"awsSecretsManager": aws}
    bench.kube.create(demo.store_collection(NS), other)
    bench.edit_spec(storeRef={"kind": "RotationStore", "name": "aws"})
    run = bench.reconcile()
    assert run.condition("Ready")[:2] == ("False", reasons.STORE_KIND_CHANGED)
    assert "revert it" in run.condition("Ready")[2]
    assert run.condition("Degraded")[:2] == ("True", reasons.STORE_KIND_CHANGED)
    assert run.requeue == bench.settings.permanent_error_recheck
    assert run.step == Step.GENERATE
    bench.edit_spec(storeRef={"kind": "RotationStore", "name": "vault"})
    assert bench.rotate_to_end()[-1].status.last_result is RotationResult.SUCCEEDED


def test_store_address_changed_by_the_admin_mid_rotation_is_refused(bench: EngineBench) -> None:
    bench.seed()
    bench.reconcile()
    bench.kube.merge_patch(
        f"/apis/rotator.dev/v1alpha1/namespaces/{NS}/rotationstores/vault",
        {"spec": {"vault": {"address": "http://elsewhere.invalid:8200"}}},
    )
    run = bench.reconcile()
    assert run.condition("Ready")[:2] == ("False", reasons.STORE_KIND_CHANGED)
    assert "address" in run.condition("Ready")[2]


def test_store_path_edited_mid_rotation_stays_pinned(bench: EngineBench) -> None:
    bench.seed()
    bench.reconcile()
    pinned: list[str] = []

    def record(ref: object, resolved: ResolvedStore) -> FakeStore:
        pinned.append(resolved.path)
        return bench.store

    bench.open_store = record
    bench.edit_spec(path="moved")
    bench.rotate_to_end()
    assert set(pinned) == {"shop/demo-db"}
    bench.annotate(FORCE_ROTATE, "next")
    bench.reconcile()
    assert pinned[-1] == "shop/moved", "the edit applies to the next rotation"


def test_step_timeline_keeps_milliseconds(bench: EngineBench) -> None:
    bench.seed()
    bench.reconcile()
    bench.tick(0.25)
    run = bench.reconcile()
    assert run.status.rotation is not None
    raw = (bench.kube.get_policy("shop", "demo-db") or {})["status"]["rotation"]
    assert raw["stepStartedAt"] == "2026-12-01T08:00:00.250Z"
    assert run.status.rotation.steps is not None
    assert run.status.rotation.steps[0].seconds == 0.25
    assert run.status.rotation.started_at == T0


def test_verify_never_judges_a_view_of_the_workload_from_before_its_restart(bench: EngineBench) -> None:
    """As the operator runs, verify reads the workload from the watch cache, and the watch may
    not have delivered the restart yet: the cache then shows the last rollout, complete. Judged,
    that view would verify at once and revoke the old credential under pods that still use it.
    Verify waits instead, until the view shows this rotation's restart."""
    bench.seed()
    bench.watch()
    bench.rotate_to_end()
    before_restart = bench.deployment()
    bench.annotate(FORCE_ROTATE, "lagging-watch")
    bench.tick(60)
    bench.rotate_to_step(Step.VERIFY)
    cache = bench.kube.cache
    assert cache is not None
    # The watch lags: its last word is the rollout before this one. The cache drops an event
    # older than our own write for a while (WatchCache's floor); past that, or where versions
    # are not numbers, it takes it: forget the floor so it does here.
    cache.forget(workload_path("Deployment", NS, DEPLOYMENT))
    cache.put(before_restart)
    run = bench.reconcile(deliver=False)
    assert run.status.rotation is not None
    assert run.status.rotation.step == Step.VERIFY
    assert run.status.rotation.verified_at is None, "verified from a view that predates the restart"
    assert bench.store_value("1") is not None
    assert run.requeue is not None
    assert run.requeue > 0
    finished = bench.rotate_to_end()[-1]  # the delivered restart is judged as usual
    assert finished.status.history[0].result == "Succeeded"

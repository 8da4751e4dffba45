"""The less travelled branches: refusals at each point of no return, schedules without a
schedule, what an older operator may have left in status."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import SecretStr

from rotator import engine
from rotator.models import Phase, RotationResult, Step, reasons
from rotator.models.keys import FORCE_ROTATE, MANAGED_BY_LABEL
from rotator.stores.errors import StoreRefused, StoreUnavailable
from rotator.stores.fake import FakeStore
from tests.engine.harness import DEPLOYMENT, GRACE, NS, SECRET, EngineBench


def test_a_missing_restart_target_rolls_back(bench: EngineBench) -> None:
    bench.seed()
    bench.rotate_to_end()
    bench.annotate(FORCE_ROTATE, "f")
    bench.rotate_to_step(Step.DUAL)  # dual's reconcile runs on through sync and restart
    bench.kube.request("DELETE", f"/apis/apps/v1/namespaces/{NS}/deployments/{DEPLOYMENT}")
    run = bench.reconcile()
    assert run.step == Step.ROLLBACK
    assert reasons.TARGET_MISSING in run.reasons
    assert bench.rotate_to_end()[-1].status.last_result is RotationResult.ROLLED_BACK


def test_a_refusal_during_revoke_holds_and_never_rolls_back(bench: EngineBench) -> None:
    bench.seed(revoke=GRACE)
    bench.rotate_to_end()
    bench.annotate(FORCE_ROTATE, "f")
    bench.rotate_to_revoke()
    secret = bench.secret()
    assert secret is not None
    secret["metadata"]["labels"] = {}  # someone took the Secret over
    bench.kube.replace_secret(NS, SECRET, secret)
    run = bench.reconcile()
    assert run.step == Step.REVOKE
    assert run.condition("Ready")[:2] == ("False", reasons.SECRET_NOT_OWNED)
    assert MANAGED_BY_LABEL in run.condition("Ready")[2]
    assert run.condition("Degraded")[:2] == ("True", reasons.SECRET_NOT_OWNED)
    assert bench.store_value("1") is not None, "nothing revoked while refused"


def test_a_store_error_during_revoke_is_named_not_rolled_back(bench: EngineBench) -> None:
    bench.seed(revoke=GRACE)
    bench.rotate_to_end()
    bench.annotate(FORCE_ROTATE, "f")
    bench.rotate_to_revoke()
    bench.store.versions[2].value = None  # the verified new credential vanished from the store
    run = bench.reconcile()
    assert run.step == Step.REVOKE
    assert run.condition("Ready")[:2] == ("False", reasons.STORE_ERROR)
    assert bench.store_value("1") is not None


def test_a_store_outage_during_drift_repair_is_temporary(bench: EngineBench) -> None:
    class Flaky(FakeStore):
        def read_value(self, version: str) -> SecretStr:
            raise StoreUnavailable(f"{self.location}: connection refused")

    bench.seed()
    bench.rotate_to_end()
    store = Flaky()
    store.versions, store.tags, store.current_pointer = bench.store.versions, bench.store.tags, "1"
    run = bench.reconcile(open_store=lambda ref, resolved: store)
    assert run.temporary
    assert run.condition("Ready")[:2] == ("False", reasons.STORE_UNAVAILABLE)


def test_an_unreadable_current_value_is_degraded_but_not_fatal(bench: EngineBench) -> None:
    class Unreadable(FakeStore):
        def read_value(self, version: str) -> SecretStr:
            raise StoreRefused(f"{self.location}: version {version} is sealed")

    bench.seed()
    bench.rotate_to_end()
    store = Unreadable()
    store.versions, store.tags, store.current_pointer = bench.store.versions, bench.store.tags, "1"
    run = bench.reconcile(open_store=lambda ref, resolved: store)
    assert run.condition("Degraded")[:2] == ("True", reasons.CURRENT_UNREADABLE)
    assert run.condition("Ready")[:2] == ("True", reasons.READY)


def test_without_a_schedule_only_forces_and_spec_changes_rotate(bench: EngineBench) -> None:
    bench.seed(schedule=None)
    bench.rotate_to_end()
    bench.tick(86400 * 400)
    run = bench.reconcile()
    assert run.step is None
    assert run.status.next_rotation_time is None
    assert run.requeue == bench.settings.resync_after("shop/demo-db")
    assert "no rotation scheduled" in run.condition("Ready")[2]
    bench.edit_spec(dryRun=True)
    report = bench.reconcile()
    assert report.status.last_dry_run is not None
    assert not report.status.last_dry_run.would_rotate
    assert report.status.last_dry_run.message.startswith("dry run: no rotation")


def test_a_failed_rotation_stays_failed_until_the_next_one(bench: EngineBench) -> None:
    bench.seed(schedule={"interval": "10m"}, revoke=GRACE)
    bench.rotate_to_end()
    bench.annotate(FORCE_ROTATE, "f")
    bench.rotate_to_revoke()
    raw = bench.status().rotation
    assert raw is not None
    bench.set_status({"rotation": {"verifiedAt": None}})
    failed = bench.reconcile()
    assert failed.status.phase is Phase.FAILED
    assert failed.status.current_version == "2", "verified and promoted: the new one is current"
    idle = bench.reconcile()
    assert idle.status.phase is Phase.FAILED, "Idle would hide that a human must look"
    assert idle.status.next_rotation_time == idle.status.retry_not_before, "the pause outlasts the schedule"


def test_adopting_a_value_without_a_creation_time(bench: EngineBench) -> None:
    bench.seed()
    bench.store.seed("pre-existing-value")
    bench.store.versions[1].created_at = None  # type: ignore[assignment]
    bench.edit_spec(adopt=True)
    run = bench.reconcile()
    assert run.status.current_version == "1"
    assert run.status.credential_created_at is None
    assert reasons.STORE_ADOPTED in run.reasons


def test_a_rotation_from_an_older_status_without_a_spec_hash_finishes(bench: EngineBench) -> None:
    bench.seed()
    bench.reconcile()
    bench.set_status({"rotation": {"credentialSpecHash": None}, "credentialSpecHash": "before"})
    end = bench.rotate_to_end()[-1]
    assert end.status.last_result is RotationResult.SUCCEEDED
    assert end.status.credential_spec_hash == "before", "only a hash the rotation carried is recorded"


def test_rotation_ids_are_unique_by_default(bench: EngineBench) -> None:
    ids = {
        engine.Deps(
            kube=bench.kube,
            resolve_store=lambda r, s: None,  # type: ignore[arg-type,return-value]
            open_store=lambda r, s: bench.store,
            metrics=bench.metrics,
        ).new_rotation_id()
        for _ in range(50)
    }
    assert len(ids) == 50


@pytest.mark.parametrize("seconds", [0, 61])
def test_schedule_gauges_follow_status(bench: EngineBench, seconds: int) -> None:
    bench.seed()
    bench.rotate_to_end()
    bench.tick(seconds)
    bench.reconcile()
    age = bench.metrics.credential_age.labels(namespace="shop", policy="demo-db")._value.get()
    assert age == pytest.approx(seconds, abs=1.0)
    assert bench.metrics.in_progress.labels(namespace="shop", policy="demo-db")._value.get() == 0
    _ = timedelta

"""Honest conditions (issue 9, item 4): during any outage the policy says so, idle or mid-rotation,
naming what fails since when; a store that lost the current version is Degraded, not Ready."""

from __future__ import annotations

import re

from rotator.models import PolicyRef, Step, reasons
from rotator.models.keys import FORCE_ROTATE
from rotator.sandbox.kube_emulator import Fault
from rotator.stores.errors import StoreAuthError
from rotator.stores.fake import FakeStore
from tests.engine.harness import T0, EngineBench


def test_store_outage_mid_rotation_turns_ready_false_since_the_first_failure_and_back(
    bench: EngineBench,
) -> None:
    bench.seed()
    bench.reconcile()
    bench.store.fail_next(3)
    first = bench.reconcile()
    assert first.step == Step.GENERATE
    status, reason, message = first.condition("Ready")
    assert (status, reason) == ("False", reasons.STORE_UNAVAILABLE)
    assert "store unavailable since 2026-12-01T08:00:00Z" in message
    assert "injected fault" in message, "what is unreachable: the store names its location"
    assert "waits at step generate" in message
    assert first.condition("Rotating")[1:] == (
        reasons.STEP_RETRYING,
        "generate: retrying after 1 failed attempt (failing since 2026-12-01T08:00:00Z): StoreUnavailable",
    )
    assert first.status.failing_since == T0
    assert first.reasons == [reasons.STEP_RETRYING]
    bench.tick(40)
    second = bench.reconcile()
    bench.tick(40)
    third = bench.reconcile()
    assert third.condition("Ready")[2] == message, "the message stays put through the outage"
    assert "after 3 failed attempts" in third.condition("Rotating")[2]
    assert third.status.failing_since == T0
    ready = next(c for c in third.status.conditions if c.type == "Ready")
    assert ready.last_transition_time == T0, "Ready flipped once per outage"
    assert second.reasons == third.reasons == [], "one Event per outage"
    bench.tick(40)
    healed = bench.reconcile()
    assert healed.step == Step.DUAL
    assert healed.condition("Ready")[:2] == ("True", reasons.READY)
    assert healed.condition("Rotating")[1] == reasons.ROTATING
    assert healed.status.failing_since is None
    assert bench.status().failing_since is None
    assert bench.rotate_to_end()[-1].status.last_result == "Succeeded"


def test_refused_identity_mid_rotation_is_store_auth_failed(bench: EngineBench) -> None:
    bench.seed()
    bench.rotate_to_step(Step.DUAL)

    def refuse(ref: PolicyRef, resolved: object) -> object:
        raise StoreAuthError("secret/shop/demo-db: read denied: 403 permission denied")

    run = bench.reconcile(open_store=refuse)
    assert run.temporary
    status, reason, message = run.condition("Ready")
    assert (status, reason) == ("False", reasons.STORE_AUTH_FAILED)
    assert message.startswith("store refuses rotator's login since 2026-12-01T08:00:00Z")
    assert "retrying after 1 failed attempt" in run.condition("Rotating")[2]
    assert bench.auth_failures == ["shop/demo-db"]
    healed = bench.reconcile()
    assert healed.condition("Ready")[:2] == ("True", reasons.READY)


def test_api_outage_mid_rotation_is_kubernetes_error_and_heals(bench: EngineBench) -> None:
    bench.seed()
    bench.rotate_to_step(Step.DUAL)
    bench.server.add_fault(Fault(re.compile(r"/secrets/"), code=503, reason="ServiceUnavailable", times=1))
    run = bench.reconcile()
    # dual promoted, then sync (chained in the same reconcile) met the outage: what is recorded
    # and retried is sync, the promotion done
    assert run.step == Step.SYNC
    assert bench.store.current_pointer == run.status.rotation.new_version  # type: ignore[union-attr]
    status, reason, message = run.condition("Ready")
    assert (status, reason) == ("False", reasons.KUBE_ERROR)
    assert message.startswith("Kubernetes API unavailable since 2026-12-01T08:00:00Z")
    assert run.condition("Rotating")[2].startswith("sync: retrying after 1 failed attempt")
    healed = bench.reconcile()
    assert healed.step == Step.VERIFY, "sync retried, then restart and verify's first look chained"
    assert healed.condition("Ready")[:2] == ("True", reasons.READY)


def test_idle_outage_keeps_its_start_time_and_clears_it_once_healed(bench: EngineBench) -> None:
    bench.seed()
    bench.rotate_to_end()
    started = bench.now
    bench.store.available = False
    first = bench.reconcile(failures=0)
    bench.tick(120)
    later = bench.reconcile(failures=3)
    assert first.condition("Ready")[2] == later.condition("Ready")[2]
    assert f"since {started.strftime('%Y-%m-%dT%H:%M:%SZ')}" in later.condition("Ready")[2]
    assert later.status.failing_since == started.replace(microsecond=0)
    bench.store.available = True
    healed = bench.reconcile()
    assert healed.condition("Ready")[:2] == ("True", reasons.READY)
    assert healed.status.failing_since is None


def test_unexpected_exception_mid_rotation_is_ready_false_until_the_step_runs(bench: EngineBench) -> None:
    bench.seed()
    bench.reconcile()

    def bug(ref: PolicyRef, resolved: object) -> object:
        raise RuntimeError("boom")

    run = bench.reconcile(open_store=bug)
    status, reason, message = run.condition("Ready")
    assert (status, reason) == ("False", reasons.RECONCILE_ERROR)
    assert "unexpected RuntimeError" in message
    assert "boom" not in message
    assert run.condition("Rotating")[2].endswith("RuntimeError")
    assert bench.reconcile().condition("Ready")[:2] == ("True", reasons.READY)


def test_a_store_that_lost_the_current_version_is_degraded_and_touches_nothing(bench: EngineBench) -> None:
    """A Vault restarted empty: the Secret still works, so nothing rotates by itself."""
    bench.seed()
    bench.rotate_to_end()
    before = bench.status()
    value = bench.secret_value()
    lost = bench.store
    bench.store = FakeStore()
    run = bench.reconcile()
    assert run.status.rotation is None, "a missing credential is not a trigger by itself"
    status, reason, message = run.condition("Degraded")
    assert (status, reason) == ("True", reasons.CREDENTIAL_MISSING)
    assert run.condition("Ready")[:2] == ("False", reasons.CREDENTIAL_MISSING)
    assert f"store version {before.current_version}" in message
    assert "rotator force demo-db -n shop" in message
    assert "restore the store" in message
    assert run.reasons == [reasons.CREDENTIAL_MISSING]
    assert bench.reconcile().reasons == [], "one Event"
    assert bench.secret_value() == value
    assert bench.store.published == []
    # Recovery 1: the store comes back.
    bench.store = lost
    restored = bench.reconcile()
    assert restored.condition("Degraded")[:2] == ("False", reasons.CREDENTIAL_RESTORED)
    assert restored.condition("Ready")[:2] == ("True", reasons.READY)
    assert bench.secret_value() == value


def test_a_forced_rotation_recovers_a_lost_credential(bench: EngineBench) -> None:
    bench.seed()
    bench.rotate_to_end()
    old_value = bench.secret_value()
    bench.store = FakeStore()
    assert bench.reconcile().condition("Degraded")[1] == reasons.CREDENTIAL_MISSING
    bench.annotate(FORCE_ROTATE, "recover")
    started = bench.reconcile()
    assert started.status.rotation is not None
    assert started.status.rotation.old_version is None, "nothing to fall back to or revoke"
    end = bench.rotate_to_end()[-1]
    assert end.status.last_result == "Succeeded"
    assert end.condition("Degraded")[:2] == ("False", reasons.ROTATION_SUCCEEDED)
    assert end.condition("Ready")[:2] == ("True", reasons.READY)
    assert end.status.current_version is not None
    new_value = bench.secret_value()
    assert new_value != old_value
    assert bench.store_value(end.status.current_version) == new_value

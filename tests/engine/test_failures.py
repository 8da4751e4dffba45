"""Every error class a reconcile can meet, and what it becomes: a backoff or a named condition."""

from __future__ import annotations

import re
import statistics

import pytest

from rotator import engine
from rotator.models import PolicyRef, Step, reasons
from rotator.sandbox.kube_emulator import Fault
from rotator.stores.errors import StoreAuthError, StoreError, StoreMountError
from tests.engine.harness import SETTINGS, EngineBench


def test_store_outage_while_idle_backs_off_growing_with_the_count_and_says_so(bench: EngineBench) -> None:
    bench.seed()
    bench.rotate_to_end()
    bench.store.available = False
    first = bench.reconcile(failures=0)
    assert first.temporary
    assert first.condition("Ready")[:2] == ("False", reasons.STORE_UNAVAILABLE)
    assert first.reasons == [reasons.STEP_RETRYING]
    assert 0.5 <= (first.requeue or 0) <= 1.0
    later = bench.reconcile(failures=5)
    assert later.reasons == [], "one Event per outage"
    assert 16.0 <= (later.requeue or 0) <= 32.0
    assert bench.reconcile(failures=40).requeue == pytest.approx(60.0, abs=30.0)
    bench.store.available = True
    healed = bench.reconcile()
    assert not healed.temporary
    assert healed.condition("Ready")[:2] == ("True", reasons.READY)


def test_store_outage_mid_rotation_counts_attempts_in_status_and_resumes(bench: EngineBench) -> None:
    bench.seed()
    bench.reconcile()
    bench.store.fail_next(2)
    first = bench.reconcile()
    assert first.step == Step.GENERATE
    assert first.status.rotation is not None
    assert first.status.rotation.attempt == 1
    assert "StoreUnavailable" in (first.status.rotation.last_error or "")
    assert first.reasons == [reasons.STEP_RETRYING]
    second = bench.reconcile()
    assert second.status.rotation is not None
    assert second.status.rotation.attempt == 2
    assert second.reasons == []
    assert (second.requeue or 0) >= 1.0
    resumed = bench.reconcile()
    assert resumed.step == Step.DUAL
    assert resumed.status.rotation is not None
    assert resumed.status.rotation.attempt == 0
    assert resumed.status.rotation.last_error is None


def test_refused_identity_drops_the_session_and_says_store_auth_failed(bench: EngineBench) -> None:
    bench.seed()

    def refuse(ref: PolicyRef, resolved: object) -> object:
        raise StoreAuthError("Vault refused the token (403 permission denied)")

    run = bench.reconcile(open_store=refuse)
    assert run.temporary
    assert run.condition("Ready")[:2] == ("False", reasons.STORE_AUTH_FAILED)
    assert bench.auth_failures == ["shop/demo-db"]


def test_api_server_errors_are_temporary_or_named(bench: EngineBench) -> None:
    bench.seed()
    bench.server.add_fault(Fault(re.compile(r"/secrets/"), code=503, reason="ServiceUnavailable", times=1))
    unavailable = bench.reconcile()
    assert unavailable.temporary
    assert unavailable.condition("Ready")[:2] == ("False", reasons.KUBE_ERROR)
    bench.server.add_fault(Fault(re.compile(r"/secrets/"), code=403, reason="Forbidden", times=1))
    forbidden = bench.reconcile()
    assert not forbidden.temporary
    assert forbidden.condition("Ready")[:2] == ("False", reasons.KUBE_ERROR)
    assert "403" in forbidden.condition("Ready")[2]
    assert forbidden.requeue == SETTINGS.permanent_error_recheck


def test_a_store_error_no_retry_fixes_is_named(bench: EngineBench) -> None:
    bench.seed()

    def broken(ref: PolicyRef, resolved: object) -> object:
        raise StoreError("secret/shop/demo-db: mount is KV v1")

    run = bench.reconcile(open_store=broken)
    assert not run.temporary
    assert run.condition("Ready")[:2] == ("False", reasons.STORE_ERROR)
    assert run.requeue == SETTINGS.permanent_error_recheck


def test_an_unexpected_exception_is_a_condition_and_a_backoff_without_its_text(bench: EngineBench) -> None:
    bench.seed()

    def bug(ref: PolicyRef, resolved: object) -> object:
        raise OverflowError("date value out of range: s3cr3t-looking-detail")

    run = bench.reconcile(open_store=bug)
    assert run.temporary
    status, reason, message = run.condition("Ready")
    assert (status, reason) == ("False", reasons.RECONCILE_ERROR)
    assert "OverflowError" in message
    assert "s3cr3t" not in message
    assert [(r, w) for r, _, w in run.events] == [(reasons.RECONCILE_ERROR, True)]
    assert bench.reconcile(open_store=bug, failures=1).events == [], "one Event per streak"


def test_an_unexpected_exception_mid_rotation_retries_the_step(bench: EngineBench) -> None:
    bench.seed()
    bench.reconcile()

    def bug(ref: PolicyRef, resolved: object) -> object:
        raise RuntimeError("boom")

    run = bench.reconcile(open_store=bug)
    assert run.step == Step.GENERATE
    assert run.status.rotation is not None
    assert run.status.rotation.attempt == 1
    assert bench.rotate_to_end()[-1].status.last_result == "Succeeded"


def test_one_hundred_policies_failing_together_spread_their_retries() -> None:
    """The engine owns backoff, and its jitter survives to the requeue the handler sleeps."""
    for attempt in (0, 3, 10):
        delays = [engine.backoff(PolicyRef("team", f"policy-{i}", ""), attempt, SETTINGS) for i in range(100)]
        ceiling = min(SETTINGS.backoff_cap, SETTINGS.backoff_base * 2**attempt)
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len({round(d, 6) for d in delays}) >= 95, "retries in lockstep"
        assert statistics.pstdev(delays) > ceiling / 10
        assert max(delays) - min(delays) > ceiling / 3


def test_one_hundred_idle_policies_failing_together_requeue_apart(bench: EngineBench) -> None:
    bench.seed()
    for i in range(1, 100):
        bench.create_policy(name=f"p{i:02d}")
    bench.store.available = False
    requeues = []
    deps = bench.deps()
    for i in range(100):
        name = "demo-db" if i == 0 else f"p{i:02d}"
        obj = bench.kube.get_policy("shop", name)
        assert obj is not None
        requeues.append(engine.reconcile(obj, deps, bench.now, failures=4).requeue_after)
    assert all(r is not None and 8.0 <= r <= 16.0 for r in requeues)
    assert len(set(requeues)) >= 95


def test_a_mount_that_is_not_kv_v2_is_named_as_a_store_problem(bench: EngineBench) -> None:
    bench.seed()

    def kv1(ref: PolicyRef, resolved: object) -> object:
        raise StoreMountError("mount secret is not a KV version 2 engine (kv, version 1)")

    run = bench.reconcile(open_store=kv1)
    assert not run.temporary
    assert run.condition("Ready")[:2] == ("False", reasons.STORE_INVALID)
    assert "KV version 2" in run.condition("Ready")[2]

"""Every status write is conditional on the resourceVersion the reconcile read (issue 9, item 2).

Two writers of one policy (a deposed leader still finishing a reconcile, a human, Kopf's own
annotations) cannot overwrite each other's status: the later write gets a 409 and its whole
decision, status and Events, is dropped and made again from a fresh read.
"""

from __future__ import annotations

from typing import Any

from rotator import engine
from rotator.models import PolicyRef, Step, reasons
from rotator.models.keys import FORCE_ROTATE
from tests.engine.harness import NS, POLICY, EngineBench


def read(bench: EngineBench) -> dict[str, Any]:
    obj = bench.kube.get_policy(NS, POLICY)
    assert obj is not None
    return obj


def touch(bench: EngineBench) -> None:
    """Someone else writes the policy (here: an annotation, as Kopf's bookkeeping does)."""
    bench.annotate("example.com/touched", bench.now.isoformat())


def test_a_start_decided_on_a_stale_read_is_dropped_whole(bench: EngineBench) -> None:
    bench.seed()
    stale = read(bench)
    touch(bench)
    before = bench.status_writes()
    result = engine.reconcile(stale, bench.deps(), bench.now)
    assert bench.status_writes() == before + 1, "the write was tried, with the version read"
    assert (result.requeue_after, result.events, result.temporary) == (0.0, [], True)
    assert bench.status().rotation is None, "nothing of the stale decision was stored"
    assert bench.store.versions == {}, "start persists before any side effect: none happened"
    fresh = bench.reconcile()
    assert fresh.step == Step.GENERATE
    assert reasons.ROTATION_STARTED in fresh.reasons


def test_two_replicas_deciding_from_one_read_start_one_rotation(bench: EngineBench) -> None:
    bench.seed()
    bench.rotate_to_end()
    bench.annotate(FORCE_ROTATE, "f")
    seen = read(bench)
    first = engine.reconcile(seen, bench.deps(), bench.now)
    second = engine.reconcile(seen, bench.deps(), bench.now)
    assert first.status.rotation is not None
    assert second.requeue_after == 0.0
    assert second.events == []
    assert bench.status().rotation == first.status.rotation, "the first writer's rotation id stands"


def test_a_step_after_a_concurrent_write_resumes_from_the_fresh_read(bench: EngineBench) -> None:
    bench.seed()
    bench.rotate_to_end()
    bench.annotate(FORCE_ROTATE, "f")
    bench.rotate_to_step(Step.GENERATE)
    stale = read(bench)
    touch(bench)
    result = engine.reconcile(stale, bench.deps(), bench.now)
    assert result.temporary
    assert result.events == []
    assert read(bench)["status"]["rotation"]["step"] == Step.GENERATE
    # The pending version the stale reconcile wrote is adopted by rotation id, never written twice.
    runs = bench.rotate_to_end()
    assert runs[-1].status.current_version == "2"
    assert sorted(bench.store.versions) == [1, 2]


def test_conflicts_in_a_row_back_off(bench: EngineBench) -> None:
    bench.seed()
    stale = read(bench)
    touch(bench)
    result = engine.reconcile(stale, bench.deps(), bench.now, failures=3)
    ref = PolicyRef(NS, POLICY, stale["metadata"]["uid"])
    assert result.requeue_after == engine.backoff(ref, 2, bench.settings) > 0


def test_an_unreadable_status_is_reported_conditionally_too(bench: EngineBench) -> None:
    bench.seed()
    stale = {**read(bench), "status": {"rotation": {"id": "r1", "step": "nonsense"}}}  # a hand edit
    touch(bench)
    result = engine.reconcile(stale, bench.deps(), bench.now)
    assert (result.requeue_after, result.events) == (0.0, [])
    assert not (read(bench).get("status") or {}).get("conditions")
    fresh = bench.reconcile(status=stale["status"])
    assert fresh.condition("Ready")[:2] == ("False", reasons.INVALID_STATUS)

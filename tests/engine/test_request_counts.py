"""Requests counted, not guessed (issue 11): what one rotation and an idle policy cost.

Run as the operator runs (``EngineBench.watch``): the managed Secret and the store object come
from the watch cache, each reconcile starts from the policy the last status write returned, and
a reconcile is a safety resync only when the handler says so. Counted are the API requests the
engine makes (through ``Kube``'s ``on_request``, the hook behind ``rotator_kube_requests_total``;
the rollout simulator's are its own), the Events it asks to post (one POST each) and the store
calls (the FakeStore's ``on_request``, the hook behind ``rotator_store_requests_total``: one per
Store verb). The rollout is let finish before verify looks, so verify looks once: each further
look while a rollout runs costs one workload GET (and a status write when its message changes).
"""

from __future__ import annotations

import time
from collections import Counter

from rotator.models import Step
from rotator.models.keys import CONSUMER, CONSUMER_LABEL, FORCE_ROTATE
from rotator.stores.fake import FakeStore
from rotator.workloads.health import rollout_health
from tests.engine.harness import EngineBench, Run
from tests.fixtures.figures import figure

#: The issue's goals (DESIGN §7) for one rotation with one target: 15 API requests (Events
#: included, and the two server-side dry runs that prove rotator's RBAC before the first store
#: write, issue 10), 8 store requests.
API_PER_ROTATION = 15
STORE_PER_ROTATION = 8


def _count_store(bench: EngineBench) -> Counter[str]:
    calls: Counter[str] = Counter()
    store = FakeStore(on_request=lambda operation, result: calls.update([operation]))
    bench.store = store
    return calls


def _rolled_out(bench: EngineBench) -> None:
    for _ in range(200):
        if rollout_health("Deployment", bench.deployment()).state == "complete":
            return
        time.sleep(0.01)
    raise AssertionError("the rollout did not complete")


def _forced_rotation(
    bench: EngineBench, value: str, store: Counter[str], per_step: list[str] | None = None
) -> list[Run]:
    """From the first reconcile of the rotation to the idle one after it, as the handler drives
    it; ``per_step`` gets one line per reconcile: the step that ran and what it cost."""
    bench.annotate(FORCE_ROTATE, value)
    bench.tick(60)
    runs: list[Run] = []
    for _ in range(20):
        previous = runs[-1].step if runs else None
        if previous is Step.VERIFY:
            _rolled_out(bench)
        before = store.copy()
        run = bench.reconcile(resync=False)
        runs.append(run)
        if per_step is not None:
            ran = str(previous) if previous is not None else "start"
            api = ", ".join(f"{verb} {resource}: {n}" for (verb, resource), n in sorted(run.requests.items()))
            used = ", ".join(f"{verb}: {n}" for verb, n in sorted((store - before).items()))
            per_step.append(f"  {ran:>8}: api [{api}] events {run.reasons} store [{used}]")
        if run.status.rotation is None and runs[0].status.rotation is not None:
            return runs
        bench.tick(run.requeue or 0.0)
    raise AssertionError(f"rotation not finished: {runs[-1].status}")


def _settled(bench: EngineBench) -> Counter[str]:
    bench.seed()
    store = _count_store(bench)
    bench.rotate_to_end()
    bench.watch()
    bench.tick(60)
    bench.reconcile()  # the first look as the operator runs: a full one
    store.clear()
    return store


def _api(runs: list[Run]) -> Counter[tuple[str, str]]:
    total: Counter[tuple[str, str]] = Counter()
    for run in runs:
        total.update(run.requests)
    return total


def test_a_forced_rotation_with_one_target_costs_at_most_15_api_and_8_store_requests(
    bench: EngineBench,
) -> None:
    store = _settled(bench)
    per_step: list[str] = []
    runs = _forced_rotation(bench, "f1", store, per_step)
    api = _api(runs)
    events = [reason for run in runs for reason in run.reasons]
    figure(
        f"engine, one forced rotation: {api.total()} API requests + {len(events)} Events, "
        f"{store.total()} store calls, by step:\n" + "\n".join(per_step)
    )
    assert dict(api) == {
        # start, generate, dual + sync + restart + verify's first look (one reconcile:
        # advance.CHAINED), verify + revoke (grace 0: one reconcile, advance._chained)
        ("patch", "rotationpolicies/status"): 4,
        ("update", "secrets"): 3,  # generate's dry run, sync (new + previousKey), revoke (drops it)
        # generate's dry run; the restart. No GET: the Deployment carries rotator's consumer
        # label since the first rotation, so restart and verify read it from the watch cache
        ("patch", "deployments"): 2,
    }
    assert events == ["RotationStarted", "WorkloadRestarted", "RotationSucceeded"]
    assert api.total() + len(events) <= API_PER_ROTATION
    assert dict(store) == {
        "ensure_owned": 1,
        "current": 1,  # start: the old version
        "find_by_rotation": 1,
        "write": 1,  # generate
        "promote": 1,  # dual
        "read_version": 2,  # sync (the old value comes from the Secret), revoke (the new one still there)
        "revoke": 1,
    }
    assert store.total() <= STORE_PER_ROTATION
    assert all(run.writes <= 1 for run in runs)


def test_an_idle_policy_costs_nothing_between_resyncs(bench: EngineBench) -> None:
    store = _settled(bench)
    for _ in range(3):
        bench.tick(45)
        run = bench.reconcile(resync=False)  # woken by a watch event, or a due-time check
        assert (run.requests.total(), store.total(), run.writes, run.events) == (0, 0, 0, [])
        assert run.requeue == bench.settings.resync_after("shop/demo-db")
    bench.tick(bench.settings.resync)
    run = bench.reconcile()  # the safety resync: ownership, current, the value compared
    assert run.requests.total() == 0
    assert dict(store) == {"ensure_owned": 1, "current": 1, "read_version": 1}


def test_drift_seen_by_the_watch_costs_one_store_read_and_one_write(bench: EngineBench) -> None:
    store = _settled(bench)
    secret = bench.secret()
    assert secret is not None
    secret["data"]["password"] = "ZHJpZnQ="  # someone edits the managed Secret
    bench.kube.replace_secret("shop", secret["metadata"]["name"], secret)
    run = bench.reconcile(resync=False)
    assert run.reasons == ["SecretDriftRepaired"]
    assert dict(run.requests) == {("update", "secrets"): 1}
    assert dict(store) == {"ensure_owned": 1, "current": 1, "read_version": 1}
    assert bench.secret_value() == bench.store_value(str(run.status.current_version))


def test_a_workload_is_read_once_then_the_watch_covers_it(bench: EngineBench) -> None:
    """The first restart of a Deployment reads it (nothing watches it yet); its patch labels it
    a consumer, and from then on verify, and every later rotation, read it from the watch
    cache, however many times verify looks while the rollout runs."""
    bench.seed()
    bench.watch()
    first = _api(bench.rotate_to_end())
    assert first[("get", "deployments")] == 1
    assert bench.deployment()["metadata"]["labels"][CONSUMER_LABEL] == CONSUMER
    store = _count_store(bench)
    second = _api(_forced_rotation(bench, "f1", store))
    assert second[("get", "deployments")] == 0

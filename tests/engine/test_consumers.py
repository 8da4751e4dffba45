"""Consumers found by ``restart.auto``: restarted, recorded, verified and rolled back like the
explicit targets; one that vanishes is skipped, never waited for."""

from __future__ import annotations

import itertools
import json
from typing import Any

from rotator.models import RotationResult, Step
from rotator.models.keys import FORCE_ROTATE, RESTARTED_FOR, ROTATION_ID
from rotator.workloads.kinds import workload_path
from rotator.workloads.restarter import template_annotations
from tests.engine.harness import DEPLOYMENT, GRACE, NS, SECRET, EngineBench

STATEFUL = ("StatefulSet", "db")
DAEMON = ("DaemonSet", "agent")
BYSTANDER = ("Deployment", "bystander")


def workload(kind: str, name: str, volume: dict[str, Any]) -> dict[str, Any]:
    labels = {"app": name}
    spec: dict[str, Any] = {
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "app", "image": "app:1"}], "volumes": [volume]},
        },
    }
    if kind != "DaemonSet":
        spec["replicas"] = 1
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def seed_consumers(bench: EngineBench, restart: dict[str, Any], **spec: Any) -> None:
    """The demo Deployment (explicit target unless told otherwise), a StatefulSet reading the
    Secret as a volume, a DaemonSet through a projected volume, and a bystander reading another."""
    bench.seed(restart=restart, **spec)
    for (kind, name), volume in (
        (STATEFUL, {"name": "v", "secret": {"secretName": SECRET}}),
        (DAEMON, {"name": "v", "projected": {"sources": [{"secret": {"name": SECRET}}]}}),
        (BYSTANDER, {"name": "v", "secret": {"secretName": "someone-elses"}}),
    ):
        bench.kube.create(workload_path(kind, NS), workload(kind, name, volume))


def annotations(bench: EngineBench, kind: str, name: str) -> dict[str, str]:
    found = bench.kube.get(workload_path(kind, NS, name))
    assert found is not None
    return dict(template_annotations(found))


def test_discovered_consumers_are_restarted_recorded_and_verified(bench: EngineBench) -> None:
    # A grace period: the rollouts (10 ms a pod here) may be complete by verify's first look, in
    # the restart's own reconcile; without one verify then chains into revoke and that reconcile
    # ends the rotation, leaving no status to show what restart recorded.
    restart = {"targets": [{"kind": "Deployment", "name": DEPLOYMENT}], "auto": True}
    seed_consumers(bench, restart, revoke=GRACE)
    runs = bench.rotate_to_end()
    assert runs[-1].status.last_result is RotationResult.SUCCEEDED
    # The reconcile that ran the restart step is the one after the step became "dual" (dual,
    # sync and restart run in one reconcile: engine.advance.CHAINED).
    restart_runs = [run for before, run in itertools.pairwise(runs) if before.step == Step.DUAL]
    assert len(restart_runs) == 1, "three targets, maxConcurrent 5: one run"
    restart_run = restart_runs[0]
    rotation = restart_run.status.rotation
    assert rotation is not None
    # The explicit target first, then the discovered ones by kind; the bystander left alone.
    assert rotation.restarted_targets == ("Deployment/demo-app", "StatefulSet/db", "DaemonSet/agent")
    for kind in ("deployments", "statefulsets", "daemonsets"):
        assert restart_run.requests[("list", kind)] == 1, "one list per kind; Secrets never listed"
    assert restart_run.requests[("list", "secrets")] == 0
    history = runs[-1].status.history[0]
    for kind, name in (("Deployment", DEPLOYMENT), STATEFUL, DAEMON):
        found = annotations(bench, kind, name)
        assert found[ROTATION_ID] == history.id
        assert json.loads(found[RESTARTED_FOR]) == {SECRET: history.id}
    assert ROTATION_ID not in annotations(bench, *BYSTANDER)
    # verify looks first in the restart's reconcile (restart itself only lists), then on its own
    verify_runs = runs[runs.index(restart_run) :]
    for kind in ("statefulsets", "daemonsets"):
        assert sum(r.requests[("get", kind)] for r in verify_runs) >= 1, f"verify reads the discovered {kind}"


def test_without_auto_nothing_is_listed_and_only_targets_restart(bench: EngineBench) -> None:
    seed_consumers(bench, {"targets": [{"kind": "Deployment", "name": DEPLOYMENT}]})
    runs = bench.rotate_to_end()
    assert runs[-1].status.last_result is RotationResult.SUCCEEDED
    assert not any(run.requests[("list", "statefulsets")] for run in runs)
    assert ROTATION_ID not in annotations(bench, *STATEFUL)


def test_a_failed_rotation_rolls_back_discovered_consumers_too(bench: EngineBench) -> None:
    seed_consumers(bench, {"auto": True}, verify={"timeout": "5s"})
    bench.rotate_to_end()
    old = bench.secret_value()
    bench.annotate(FORCE_ROTATE, "again")
    bench.tick(60)
    bench.server.set_fail_readiness(STATEFUL[0], NS, STATEFUL[1])
    runs = bench.rotate_to_end()
    assert any(run.step == Step.ROLLBACK for run in runs)
    assert runs[-1].status.last_result is RotationResult.ROLLED_BACK
    assert bench.secret_value() == old
    rotation_id = runs[-1].status.history[0].id
    for kind, name in (("Deployment", DEPLOYMENT), STATEFUL, DAEMON):
        assert annotations(bench, kind, name)[ROTATION_ID] == f"{rotation_id}-rollback", (kind, name)
    assert ROTATION_ID not in annotations(bench, *BYSTANDER)


def test_a_discovered_consumer_deleted_mid_rotation_is_not_waited_for(bench: EngineBench) -> None:
    seed_consumers(bench, {"auto": True, "maxConcurrent": 1})
    bench.rotate_to_end()
    bench.annotate(FORCE_ROTATE, "again")
    bench.tick(60)
    # Throttled to one at a time: delete the DaemonSet before its turn, then the StatefulSet
    # after it was restarted (recorded, then gone before verify read it).
    bench.rotate_until(
        lambda run: run.status.rotation is not None and len(run.status.rotation.restarted_targets) == 2
    )
    bench.kube.request("DELETE", workload_path(DAEMON[0], NS, DAEMON[1]))
    bench.kube.request("DELETE", workload_path(STATEFUL[0], NS, STATEFUL[1]))
    runs = bench.rotate_to_end()
    assert runs[-1].status.last_result is RotationResult.SUCCEEDED
    assert runs[-1].status.current_version == "2"


def test_a_restart_the_watch_has_not_delivered_still_holds_its_place_in_the_throttle(
    bench: EngineBench,
) -> None:
    """maxConcurrent 1: the next consumer restarts only once the last one's rollout is seen
    complete. A cached view from before that restart shows the previous rollout, complete; it
    must not free the place (three rollouts at once would be a herd the setting exists to stop)."""
    seed_consumers(bench, {"auto": True, "maxConcurrent": 1})
    bench.watch()
    bench.rotate_to_end()
    views = {
        f"{kind}/{name}": bench.kube.request("GET", workload_path(kind, NS, name))
        for kind, name in (("Deployment", DEPLOYMENT), STATEFUL, DAEMON)
    }
    bench.annotate(FORCE_ROTATE, "lagging-watch")
    bench.tick(60)
    bench.rotate_until(
        lambda run: run.status.rotation is not None and len(run.status.rotation.restarted_targets) == 1
    )
    (first,) = bench.status().rotation.restarted_targets  # type: ignore[union-attr]
    cache = bench.kube.cache
    assert cache is not None
    # The watch's last word on it: before its restart, taken past the floor our restart's
    # write left (WatchCache), as it is once the floor has expired.
    kind, _, name = first.partition("/")
    cache.forget(workload_path(kind, NS, name))
    cache.put(views[first])
    run = bench.reconcile(deliver=False)
    assert run.status.rotation is not None
    assert run.status.rotation.restarted_targets == (first,), "a second restart began on a stale view"
    assert bench.rotate_to_end()[-1].status.last_result is RotationResult.SUCCEEDED

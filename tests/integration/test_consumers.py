"""Consumers through the operator, end to end (real OpenBao, the emulator and its rollout
simulator, the operator as a real process): Deployments, StatefulSets and DaemonSets restarted,
found by ``restart.auto`` from their pod templates, throttled by ``restart.maxConcurrent``, and a
workload shared by two policies restarted once when one restart covers both new values.

On the emulator only. The throttle test counts rollouts in flight from one consistent instant of
the emulator's store (read inside its event loop) and slows its pods down; a real API server
offers neither, and restart.auto finding and rolling each kind through the real controllers,
with the install's grants, is tests/realkube/test_operator_real.py's. The shared-workload test
holds policy B on a StatefulSet whose restarted pod never turns Ready, then heals it by its
template: the real StatefulSet controller (OrderedReady) never replaces a pod that is not
Ready, so a healed template does not roll (seen on the real control plane: the pod stays on
the faulty revision; Kubernetes documents it, a forced rollback needs the pod deleted)."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from rotator.kube import policy_path
from rotator.models.keys import FORCE_ROTATE, RESTARTED_FOR, ROTATION_ID
from rotator.sandbox import demo
from rotator.sandbox.kube_server import KubeEmulator
from rotator.workloads.health import rollout_health
from rotator.workloads.kinds import KINDS, workload_path
from rotator.workloads.restarter import restarted_for, template_annotations
from tests.fixtures.rotation import NAMESPACE, Bench

Obj = Mapping[str, Any]
SECRET = demo.SECRET


def reference(secret: str, how: str) -> dict[str, Any]:
    """A pod spec reading ``secret`` one of the four ways discovery recognises. Marked optional,
    as a consumer that starts before rotator first writes its Secret must be (a required one
    waits in CreateContainerConfigError, as on a real cluster); discovery ignores the flag."""
    container: dict[str, Any] = {"name": "app", "image": "registry.example/app:1"}
    pod: dict[str, Any] = {"containers": [container]}
    if how == "env":
        container["env"] = [
            {
                "name": "PW",
                "valueFrom": {"secretKeyRef": {"name": secret, "key": "password", "optional": True}},
            }
        ]
    elif how == "envFrom":
        container["envFrom"] = [{"secretRef": {"name": secret, "optional": True}}]
    elif how == "volume":
        pod["volumes"] = [{"name": "creds", "secret": {"secretName": secret, "optional": True}}]
    else:
        pod["volumes"] = [
            {"name": "creds", "projected": {"sources": [{"secret": {"name": secret, "optional": True}}]}}
        ]
    return pod


def workload(kind: str, name: str, pod: Mapping[str, Any], replicas: int = 2) -> dict[str, Any]:
    labels = {"app": name}
    spec: dict[str, Any] = {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}}}
    spec["template"]["spec"] = dict(pod)
    if kind == "Deployment":
        spec["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
        spec["progressDeadlineSeconds"] = 600
    if kind == "StatefulSet":
        spec["serviceName"] = name
    if kind != "DaemonSet":
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def create_workload(bench: Bench, body: Mapping[str, Any]) -> None:
    bench.kube.create(workload_path(str(body["kind"]), NAMESPACE), body)


def read_workload(bench: Bench, kind: str, name: str) -> Obj:
    found = bench.kube.get(workload_path(kind, NAMESPACE, name))
    assert found is not None
    return found


def all_rolled_out(bench: Bench, targets: list[tuple[str, str]]) -> bool:
    return all(rollout_health(kind, read_workload(bench, kind, name)).complete for kind, name in targets)


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class InFlightObserver:
    """Samples, as fast as the emulator answers, how many of ``targets`` are mid-rollout after a
    rotator restart: the pod template carries a rotation id and the rollout is not complete.

    Each sample reads every target inside the emulator's event loop in one go, so it is one
    consistent instant of the cluster (no rollout can finish or start between two reads)."""

    def __init__(self, bench: Bench, targets: list[tuple[str, str]]) -> None:
        self.bench = bench
        self.targets = targets
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="in-flight-observer", daemon=True)

    def _snapshot(self, emulator: KubeEmulator) -> list[tuple[str, Obj | None]]:
        found: list[tuple[str, Obj | None]] = []
        for kind, name in self.targets:
            info = KINDS[kind]
            rt = emulator.store.type_for(info.group, info.version, info.plural)
            found.append((kind, emulator.store.find(rt, NAMESPACE, name)))
        return found

    def _run(self) -> None:
        while not self._stop.is_set():
            snapshot = self.bench.kube_server.call(self._snapshot)
            self.samples.append(
                sum(
                    1
                    for kind, obj in snapshot
                    if obj is not None
                    and ROTATION_ID in template_annotations(obj)
                    and not rollout_health(kind, obj).complete
                )
            )
            time.sleep(0.005)

    def __enter__(self) -> InFlightObserver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


REFERENCES = ("env", "envFrom", "volume", "projected")


def test_statefulsets_and_daemonsets_discovered_and_throttled_end_to_end(bench: Bench) -> None:
    """Twelve consumers, four of each kind, each reading the Secret one of the four ways; two of
    them also named explicitly. restart.auto finds them all (and not the bystander), at most
    maxConcurrent=3 roll at once through two rotations, and every pod ends on the new version."""
    bench.seed(deployment=False, create_policy=False)
    targets = [(kind, f"{kind.lower()}-{i}") for kind in KINDS for i in range(4)]
    for index, (kind, name) in enumerate(targets):
        create_workload(bench, workload(kind, name, reference(SECRET, REFERENCES[index % 4])))
    create_workload(bench, workload("Deployment", "bystander", reference("someone-elses", "env")))
    wait_for(lambda: all_rolled_out(bench, [*targets, ("Deployment", "bystander")]), "first rollouts")
    restart = {
        "targets": [
            {"kind": "StatefulSet", "name": "statefulset-2"},
            {"kind": "Deployment", "name": "deployment-3"},
        ],
        "auto": True,
        "maxConcurrent": 3,
    }
    bench.create_policy(deployment=False, extra_spec={"restart": restart, "verify": {"timeout": "120s"}})
    # Rollouts slower than the operator's patches (a pod ready after 0.25 s instead of 0.03 s):
    # without the throttle, all twelve would be seen in flight at once.
    bench.kube_server.call(lambda _: setattr(bench.kube_server.simulator, "pod_delay", 0.25))

    with InFlightObserver(bench, targets) as observer:
        bench.operator.start()
        bench.wait_rotations(1, timeout=120)
        bench.force()
        status = bench.wait_rotations(2, timeout=120).get("status") or {}

    assert [h["result"] for h in status["history"]] == ["Succeeded", "Succeeded"]
    assert max(observer.samples) <= 3, f"more than maxConcurrent in flight: max {max(observer.samples)}"
    assert any(observer.samples), "the observer never saw a rollout in flight"
    for kind, name in targets:
        pods = bench.kube_server.workload_pods(kind, NAMESPACE, name)
        assert pods, f"{kind}/{name} has no pods"
        assert all(p.ready and p.secret_versions[SECRET].version == "2" for p in pods), (kind, name, pods)
        annotations = template_annotations(read_workload(bench, kind, name))
        assert annotations[ROTATION_ID] == status["history"][0]["id"], f"{kind}/{name} not restarted"
    assert ROTATION_ID not in template_annotations(read_workload(bench, "Deployment", "bystander"))
    metrics = bench.metrics_text()
    for kind in KINDS:  # four of each kind, once per rotation: each workload restarted once
        assert metric(metrics, "rotator_restarts_total", kind=kind) == 8, kind


# --- a workload shared by two policies ----------------------------------------------------------

OTHER_POLICY = "billing-db"
OTHER_SECRET = "billing-db-credentials"


class OtherPolicy:
    """A second policy of the namespace, on its own Secret and store path."""

    def __init__(self, bench: Bench, restart: Mapping[str, Any]) -> None:
        self.bench = bench
        body = demo.rotation_policy(
            NAMESPACE,
            name=OTHER_POLICY,
            secret=OTHER_SECRET,
            deployment=None,
            path=f"{bench.policy_path}-billing",
            extra_spec={
                "restart": dict(restart),
                "verify": {"timeout": "120s"},
                "revoke": {"gracePeriod": "1s"},
            },
        )
        bench.kube.create(policy_path(NAMESPACE), body)

    def status(self) -> Obj:
        secret = self.bench.kube.get_secret(NAMESPACE, OTHER_SECRET)
        for encoded in ((secret or {}).get("data") or {}).values():
            self.bench.seen_values.add(base64.b64decode(encoded).decode())  # the leak scan covers it
        return (self.bench.kube.get_policy(NAMESPACE, OTHER_POLICY) or {}).get("status") or {}

    def force(self) -> None:
        self.bench.kube.merge_patch(
            policy_path(NAMESPACE, OTHER_POLICY),
            {"metadata": {"annotations": {FORCE_ROTATE: uuid.uuid4().hex[:8]}}},
        )

    def wait_rotations(self, count: int) -> Obj:
        def done() -> bool:
            status = self.status()
            return len(status.get("history") or []) >= count and not status.get("rotation")

        wait_for(done, f"{count} rotation(s) of {OTHER_POLICY}", timeout=120)
        return self.status()


def generation(bench: Bench, kind: str, name: str) -> int:
    return int(read_workload(bench, kind, name)["metadata"]["generation"])


def test_a_shared_workload_restarts_once_when_one_restart_covers_both_policies(bench: Bench) -> None:
    """``shared`` reads both policies' Secrets. Policy B has written its new value and is held
    (maxConcurrent 1, its first target ``gate`` never turns ready) when policy A restarts
    ``shared``: that restart starts pods reading B's new value too, so B records ``shared`` as
    restarted without patching it again. Then, A's restart long past, B rotates alone: ``shared``
    does not run B's newest value yet, so B restarts it."""
    bench.seed(deployment=False, create_policy=False)
    pod = reference(SECRET, "env")
    pod["containers"][0]["envFrom"] = [{"secretRef": {"name": OTHER_SECRET}}]
    create_workload(bench, workload("Deployment", "shared", pod))
    create_workload(bench, workload("StatefulSet", "gate", reference(OTHER_SECRET, "volume"), replicas=1))
    bench.create_policy(
        deployment=False, extra_spec={"restart": {"auto": True}, "verify": {"timeout": "120s"}}
    )
    other = OtherPolicy(
        bench, {"targets": [{"kind": "StatefulSet", "name": "gate"}], "auto": True, "maxConcurrent": 1}
    )
    bench.operator.start()
    bench.wait_rotations(1, timeout=120)
    other.wait_rotations(1)
    consumers = [("Deployment", "shared"), ("StatefulSet", "gate")]
    wait_for(lambda: all_rolled_out(bench, consumers), "first rollouts")
    before = generation(bench, "Deployment", "shared")

    # B: new value written, gate restarted and stuck, shared not reached (throttled).
    bench.kube_server.set_fail_readiness("StatefulSet", NAMESPACE, "gate")
    other.force()

    def b_held_at_gate() -> bool:
        rotation = other.status().get("rotation") or {}
        return rotation.get("step") == "restart" and rotation.get("restartedTargets") == ["StatefulSet/gate"]

    wait_for(b_held_at_gate, "policy B held at its first restart target")
    b_rotation = str(other.status()["rotation"]["id"])
    assert generation(bench, "Deployment", "shared") == before

    # A rotates: its restart of shared records B's Secret as written by B's rotation.
    bench.force()
    a_status = bench.wait_rotations(2, timeout=120).get("status") or {}
    assert a_status["history"][0]["result"] == "Succeeded"
    shared = read_workload(bench, "Deployment", "shared")
    assert generation(bench, "Deployment", "shared") == before + 1
    assert restarted_for(shared) == {SECRET: a_status["history"][0]["id"], OTHER_SECRET: b_rotation}

    # B goes on: shared is recorded as restarted without a second patch, and verified.
    bench.kube_server.set_fail_readiness("StatefulSet", NAMESPACE, "gate", fail=False)
    b_status = other.wait_rotations(2)
    assert b_status["history"][0]["result"] == "Succeeded"
    assert generation(bench, "Deployment", "shared") == before + 1, "B restarted the shared workload again"
    assert (
        template_annotations(read_workload(bench, "Deployment", "shared"))[ROTATION_ID]
        == a_status["history"][0]["id"]
    )
    pods = bench.kube_server.workload_pods("Deployment", NAMESPACE, "shared")
    assert pods
    assert all(
        p.ready
        and p.secret_versions[SECRET].version == "2"
        and p.secret_versions[OTHER_SECRET].version == "2"
        for p in pods
    ), pods

    # B alone: shared's record names an older rotation of B, so B restarts it.
    other.force()
    b_status = other.wait_rotations(3)
    assert b_status["history"][0]["result"] == "Succeeded"
    assert generation(bench, "Deployment", "shared") == before + 2
    shared = read_workload(bench, "Deployment", "shared")
    assert restarted_for(shared)[OTHER_SECRET] == b_status["history"][0]["id"]
    pods = bench.kube_server.workload_pods("Deployment", NAMESPACE, "shared")
    assert pods
    assert all(p.ready and p.secret_versions[OTHER_SECRET].version == "3" for p in pods), pods
    assert RESTARTED_FOR in template_annotations(shared)

"""The rollout simulator plays controller-manager and kubelet for workloads (DESIGN §5).

Rotation's Restart and Verify steps are only meaningful against workloads that really roll:
pods replaced one by one, each recording which Secret version it started with, status fields
moving as the real controllers move them, and faults that make a rollout get stuck.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from rotator.sandbox.kube_server import KubeServer
from rotator.sandbox.kube_store import JSON, ResourceType
from rotator.sandbox.pod_start import SECRET_VERSIONS_ANNOTATION, SecretVersion
from rotator.sandbox.rollout import FAIL_READINESS_ANNOTATION
from tests.fixtures.kube import KUBE_POD_DELAY, KubeHTTP, wait_until

NS = "shop"
MERGE = "application/merge-patch+json"
PATHS = {
    "Deployment": f"/apis/apps/v1/namespaces/{NS}/deployments",
    "StatefulSet": f"/apis/apps/v1/namespaces/{NS}/statefulsets",
    "DaemonSet": f"/apis/apps/v1/namespaces/{NS}/daemonsets",
}
SECRETS = f"/api/v1/namespaces/{NS}/secrets"


def workload(kind: str, name: str = "api", replicas: int = 3, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "image": "api:1",
                            # Optional references: these tests roll workloads whose Secrets
                            # may not exist (a required one holds its pods: see the test below).
                            "env": [
                                {
                                    "name": "PW",
                                    "valueFrom": {
                                        "secretKeyRef": {"name": "db", "key": "pw", "optional": True}
                                    },
                                }
                            ],
                            "envFrom": [{"secretRef": {"name": "extra", "optional": True}}],
                        }
                    ],
                    "volumes": [{"name": "certs", "secret": {"secretName": "tls", "optional": True}}],
                },
            },
            **spec,
        },
    }
    if kind != "DaemonSet":
        body["spec"]["replicas"] = replicas
    return body


def put_secret(kube_http: KubeHTTP, name: str, version: str) -> str:
    body = {
        "metadata": {"name": name, "annotations": {"rotator.dev/version": version}},
        "stringData": {"pw": version},
    }
    status, obj = kube_http.request("POST", SECRETS, body)
    if status == 409:
        patch = {"metadata": {"annotations": {"rotator.dev/version": version}}, "stringData": {"pw": version}}
        status, obj = kube_http.request("PATCH", f"{SECRETS}/{name}", patch, content_type=MERGE)
    assert status in (200, 201), obj
    return str(obj["metadata"]["resourceVersion"])


def get(kube_http: KubeHTTP, kind: str, name: str = "api") -> dict[str, Any]:
    status, obj = kube_http.request("GET", f"{PATHS[kind]}/{name}")
    assert status == 200, obj
    return dict(obj)


def restart(kube_http: KubeHTTP, kind: str, stamp: str, name: str = "api") -> None:
    patch = {"spec": {"template": {"metadata": {"annotations": {"rotator.dev/restarted-at": stamp}}}}}
    status, body = kube_http.request("PATCH", f"{PATHS[kind]}/{name}", patch, content_type=MERGE)
    assert status == 200, body


def restart_into_a_stuck_pod(kube_server: KubeServer, kube_http: KubeHTTP, kind: str, stamp: str) -> None:
    """Readiness made to fail, then a restart: returns once a new pod is stuck unready (a pod
    of the new template: an old one going away is unready too, and under load a caller acting
    on that would race the new pod's creation)."""
    pods = lambda: kube_server.workload_pods(kind, NS, "api")  # noqa: E731
    before = {p.revision for p in pods()}
    kube_server.set_fail_readiness(kind, NS, "api")
    restart(kube_http, kind, stamp)
    wait_until(lambda: any(not p.ready and p.revision not in before for p in pods()), what="a stuck pod")


def deployment_complete(obj: dict[str, Any]) -> bool:
    status, desired = obj.get("status") or {}, obj["spec"].get("replicas", 1)
    progressing: dict[str, Any] = next(
        (c for c in status.get("conditions", []) if c["type"] == "Progressing"), {}
    )
    return (
        status.get("observedGeneration", 0) >= obj["metadata"]["generation"]
        and status.get("updatedReplicas") == desired
        and status.get("replicas") == desired
        and status.get("readyReplicas") == desired
        and status.get("availableReplicas") == desired
        and progressing.get("reason") == "NewReplicaSetAvailable"
    )


class ReadyTracker:
    """Records, after every change in the store, how many pods of a workload are ready."""

    def __init__(self, server: KubeServer, kind: str, name: str = "api") -> None:
        self.server, self.kind, self.name = server, kind, name
        self.ready_counts: list[int] = []
        self.deleted_pods: list[str] = []
        self.statuses: list[JSON] = []
        self._lock = threading.Lock()

    def __call__(self, event_type: str, rt: ResourceType, obj: JSON) -> None:  # runs in the server loop
        if rt.plural == "pods" and event_type == "DELETED":
            with self._lock:
                self.deleted_pods.append(obj["metadata"]["name"])
        if rt.kind == self.kind and obj["metadata"]["name"] == self.name:
            with self._lock:
                self.statuses.append(obj.get("status") or {})
        if rt.plural == "pods":
            pods = self.server.simulator.workload_pods(self.kind, NS, self.name)
            with self._lock:
                self.ready_counts.append(sum(p.ready for p in pods))

    def __enter__(self) -> ReadyTracker:
        self.server.call(lambda emulator: emulator.store.add_listener(self))
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.call(lambda emulator: emulator.store.remove_listener(self))


# ------------------------------------------------------------------------------ Deployments


def test_pods_are_real_owned_objects_recording_secret_versions(
    kube_server: KubeServer, kube_http: KubeHTTP
) -> None:
    db_rv = put_secret(kube_http, "db", "7")
    tls_rv = put_secret(kube_http, "tls", "3")
    deploy = kube_http.request("POST", PATHS["Deployment"], workload("Deployment", replicas=2))[1]
    wait_until(lambda: deployment_complete(get(kube_http, "Deployment")), what="the initial rollout")

    pods = kube_http.request("GET", f"/api/v1/namespaces/{NS}/pods", params={"labelSelector": "app=api"})[1][
        "items"
    ]
    assert len(pods) == 2
    for pod in pods:
        assert pod["metadata"]["ownerReferences"][0]["uid"] == deploy["metadata"]["uid"]
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
        assert pod["metadata"]["labels"]["app"] == "api"
        assert SECRET_VERSIONS_ANNOTATION in pod["metadata"]["annotations"]
        assert {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"] == "True"

    infos = kube_server.workload_pods("Deployment", NS, "api")
    assert len(infos) == 2
    assert all(info.ready for info in infos)
    assert infos[0].secret_versions == {
        "db": SecretVersion(db_rv, "7"),
        "extra": SecretVersion(None, None),
        "tls": SecretVersion(tls_rv, "3"),
    }


def test_a_pod_waits_while_a_secret_it_requires_does_not_exist(
    kube_server: KubeServer, kube_http: KubeHTTP
) -> None:
    """As the kubelet: CreateContainerConfigError, Pending, not ready; ready once the Secret exists."""
    body = workload("Deployment", replicas=1)
    env = body["spec"]["template"]["spec"]["containers"][0]["env"][0]
    env["valueFrom"]["secretKeyRef"].pop("optional")
    kube_http.request("POST", PATHS["Deployment"], body)

    def waiting() -> dict[str, Any] | None:
        listed = kube_http.request(
            "GET", f"/api/v1/namespaces/{NS}/pods", params={"labelSelector": "app=api"}
        )
        pods = listed[1]["items"]
        statuses = [c for pod in pods for c in (pod.get("status") or {}).get("containerStatuses") or []]
        held = [c["state"]["waiting"] for c in statuses if "waiting" in c.get("state", {})]
        return held[0] if held and pods[0]["status"]["phase"] == "Pending" else None

    wait_until(lambda: waiting() is not None, what="the pod held for its Secret")
    assert waiting() == {"reason": "CreateContainerConfigError", "message": 'secret "db" not found'}
    assert not any(pod.ready for pod in kube_server.workload_pods("Deployment", NS, "api"))
    assert not deployment_complete(get(kube_http, "Deployment"))
    put_secret(kube_http, "db", "1")
    wait_until(
        lambda: deployment_complete(get(kube_http, "Deployment")), what="the rollout once the Secret exists"
    )
    [pod] = kube_server.workload_pods("Deployment", NS, "api")
    assert pod.ready


def test_template_change_rolls_pod_by_pod_with_zero_downtime(
    kube_server: KubeServer, kube_http: KubeHTTP
) -> None:
    put_secret(kube_http, "db", "1")
    kube_http.request("POST", PATHS["Deployment"], workload("Deployment", replicas=3))
    wait_until(lambda: deployment_complete(get(kube_http, "Deployment")), what="the initial rollout")
    old_pods = {p.name for p in kube_server.workload_pods("Deployment", NS, "api")}
    new_rv = put_secret(kube_http, "db", "2")

    with ReadyTracker(kube_server, "Deployment") as tracker:
        restart(kube_http, "Deployment", "r1")
        wait_until(lambda: deployment_complete(get(kube_http, "Deployment")), what="the restart rollout")

    pods = kube_server.workload_pods("Deployment", NS, "api")
    assert len(pods) == 3
    assert not ({p.name for p in pods} & old_pods)
    assert all(p.secret_versions["db"] == SecretVersion(new_rv, "2") for p in pods)
    # maxUnavailable defaults to 25% of 3 = 0: ready pods never drop below the desired count.
    assert min(tracker.ready_counts) >= 3
    assert max(tracker.ready_counts) <= 4  # maxSurge 25% of 3, rounded up = 1
    reasons = [
        next(c["reason"] for c in s.get("conditions", []) if c["type"] == "Progressing")
        for s in tracker.statuses
        if s.get("conditions")
    ]
    assert "ReplicaSetUpdated" in reasons
    assert reasons[-1] == "NewReplicaSetAvailable"


def test_deployment_status_fields_move_like_the_controller(
    kube_http: KubeHTTP, kube_server: KubeServer
) -> None:
    kube_http.request("POST", PATHS["Deployment"], workload("Deployment", replicas=2))
    wait_until(lambda: deployment_complete(get(kube_http, "Deployment")), what="the initial rollout")
    with ReadyTracker(kube_server, "Deployment") as tracker:
        restart(kube_http, "Deployment", "r1")
        wait_until(lambda: deployment_complete(get(kube_http, "Deployment")), what="the rollout")
    mid = [s for s in tracker.statuses if s.get("updatedReplicas", 2) < 2]
    assert mid, tracker.statuses
    assert all(s["observedGeneration"] == 2 for s in mid)
    final = get(kube_http, "Deployment")["status"]
    assert {
        k: final[k]
        for k in ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
    } == {
        "observedGeneration": 2,
        "replicas": 2,
        "updatedReplicas": 2,
        "readyReplicas": 2,
        "availableReplicas": 2,
    }
    assert "unavailableReplicas" not in final
    conditions = {c["type"]: (c["status"], c["reason"]) for c in final["conditions"]}
    assert conditions == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "NewReplicaSetAvailable"),
    }


def test_fail_readiness_annotation_ends_in_progress_deadline_exceeded(
    kube_server: KubeServer, kube_http: KubeHTTP
) -> None:
    kube_http.request(
        "POST", PATHS["Deployment"], workload("Deployment", replicas=2, progressDeadlineSeconds=1)
    )
    wait_until(lambda: deployment_complete(get(kube_http, "Deployment")), what="the initial rollout")
    old_pods = {p.name for p in kube_server.workload_pods("Deployment", NS, "api")}
    patch = {
        "metadata": {"annotations": {FAIL_READINESS_ANNOTATION: "true"}},
        "spec": {"template": {"metadata": {"annotations": {"rotator.dev/restarted-at": "r1"}}}},
    }
    kube_http.request("PATCH", f"{PATHS['Deployment']}/api", patch, content_type=MERGE)

    def stuck() -> bool:
        conditions = get(kube_http, "Deployment")["status"].get("conditions", [])
        return any(
            c["type"] == "Progressing" and c["reason"] == "ProgressDeadlineExceeded" for c in conditions
        )

    wait_until(stuck, timeout=5, what="ProgressDeadlineExceeded")
    status = get(kube_http, "Deployment")["status"]
    progressing = next(c for c in status["conditions"] if c["type"] == "Progressing")
    assert progressing["status"] == "False"
    pods = kube_server.workload_pods("Deployment", NS, "api")
    assert {p.name for p in pods if p.ready} == old_pods  # the old pods keep serving
    assert [p.ready for p in pods if p.name not in old_pods] == [False]
    assert status["readyReplicas"] == 2
    assert status["updatedReplicas"] == 1


def test_fail_readiness_set_from_python_and_healed(kube_server: KubeServer, kube_http: KubeHTTP) -> None:
    kube_http.request("POST", PATHS["Deployment"], workload("Deployment", replicas=2))
    wait_until(lambda: deployment_complete(get(kube_http, "Deployment")), what="the initial rollout")
    restart_into_a_stuck_pod(kube_server, kube_http, "Deployment", "r1")
    assert not deployment_complete(get(kube_http, "Deployment"))
    kube_server.set_fail_readiness("Deployment", NS, "api", fail=False)
    wait_until(lambda: deployment_complete(get(kube_http, "Deployment")), what="the healed rollout")


def test_scaling_and_deleting_a_deployment(kube_server: KubeServer, kube_http: KubeHTTP) -> None:
    kube_http.request("POST", PATHS["Deployment"], workload("Deployment", replicas=1))
    wait_until(lambda: deployment_complete(get(kube_http, "Deployment")), what="the initial rollout")
    kube_http.request("PATCH", f"{PATHS['Deployment']}/api", {"spec": {"replicas": 3}}, content_type=MERGE)
    wait_until(lambda: deployment_complete(get(kube_http, "Deployment")), what="scale up")
    assert len(kube_server.workload_pods("Deployment", NS, "api")) == 3
    kube_http.request("PATCH", f"{PATHS['Deployment']}/api", {"spec": {"replicas": 1}}, content_type=MERGE)
    wait_until(lambda: deployment_complete(get(kube_http, "Deployment")), what="scale down")
    kube_http.request("DELETE", f"{PATHS['Deployment']}/api")
    assert kube_http.request("GET", f"/api/v1/namespaces/{NS}/pods")[1]["items"] == []


# --------------------------------------------------------------------- StatefulSets, DaemonSets


def statefulset_complete(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    return (
        status.get("observedGeneration", 0) >= obj["metadata"]["generation"]
        and status.get("currentRevision") == status.get("updateRevision")
        and status.get("readyReplicas") == status.get("updatedReplicas") == obj["spec"]["replicas"]
        and status.get("currentReplicas") == obj["spec"]["replicas"]
    )


def test_statefulset_rolls_from_the_highest_ordinal(kube_server: KubeServer, kube_http: KubeHTTP) -> None:
    kube_http.request("POST", PATHS["StatefulSet"], workload("StatefulSet", replicas=3))
    wait_until(lambda: statefulset_complete(get(kube_http, "StatefulSet")), what="the initial rollout")
    assert sorted(p.name for p in kube_server.workload_pods("StatefulSet", NS, "api")) == [
        "api-0",
        "api-1",
        "api-2",
    ]
    first = get(kube_http, "StatefulSet")["status"]
    with ReadyTracker(kube_server, "StatefulSet") as tracker:
        restart(kube_http, "StatefulSet", "r1")
        wait_until(lambda: statefulset_complete(get(kube_http, "StatefulSet")), what="the rolling update")
    assert tracker.deleted_pods == ["api-2", "api-1", "api-0"]
    assert min(tracker.ready_counts) >= 2  # one pod at a time (maxUnavailable 1)
    mid = [s for s in tracker.statuses if s.get("currentRevision") != s.get("updateRevision")]
    assert mid
    assert mid[0]["currentRevision"] == first["currentRevision"]
    final = get(kube_http, "StatefulSet")["status"]
    assert final["updateRevision"] != first["updateRevision"]
    assert final["currentReplicas"] == final["updatedReplicas"] == final["readyReplicas"] == 3


def test_a_statefulset_pod_stuck_unready_is_not_replaced_by_a_new_template(
    kube_server: KubeServer, kube_http: KubeHTTP
) -> None:
    """The real StatefulSet controller (OrderedReady) waits for a broken pod to turn Ready before
    it replaces it, so a template changed back does not roll it (Kubernetes' documented "forced
    rollback"; seen on the real control plane): the pod must be deleted by hand."""
    kube_http.request("POST", PATHS["StatefulSet"], workload("StatefulSet", replicas=2))
    wait_until(lambda: statefulset_complete(get(kube_http, "StatefulSet")), what="the initial rollout")
    restart_into_a_stuck_pod(kube_server, kube_http, "StatefulSet", "bad")
    stuck = get(kube_http, "StatefulSet")["status"]["updateRevision"]
    restart(kube_http, "StatefulSet", "reverted")
    generation = get(kube_http, "StatefulSet")["metadata"]["generation"]

    def observed() -> bool:
        status = get(kube_http, "StatefulSet").get("status") or {}
        return status.get("observedGeneration") == generation and status.get("updateRevision") != stuck

    wait_until(observed, what="the new template observed")
    # Several pod delays: a stuck pod that turned ready once its template moved on (the fault
    # applied only to the current revision) would have been replaced by now.
    time.sleep(10 * KUBE_POD_DELAY)
    pods = {p.name: p for p in kube_server.workload_pods("StatefulSet", NS, "api")}
    assert not pods["api-1"].ready
    assert pods["api-1"].revision == stuck, "replaced while unready: the real controller waits"
    kube_http.request("DELETE", f"/api/v1/namespaces/{NS}/pods/api-1")
    wait_until(
        lambda: any(
            p.name == "api-1" and p.revision != stuck
            for p in kube_server.workload_pods("StatefulSet", NS, "api")
        ),
        what="the deleted pod recreated on the new template",
    )


def test_daemonset_runs_one_pod_per_node_and_rolls(kube_server: KubeServer, kube_http: KubeHTTP) -> None:
    kube_http.request("POST", PATHS["DaemonSet"], workload("DaemonSet"))

    def complete() -> bool:
        obj = get(kube_http, "DaemonSet")
        status = obj.get("status") or {}
        return (
            status.get("observedGeneration", 0) >= obj["metadata"]["generation"]
            and status.get("desiredNumberScheduled") == 2
            and status.get("updatedNumberScheduled")
            == status.get("numberReady")
            == status.get("numberAvailable")
            == 2
        )

    wait_until(complete, what="the initial rollout")
    pods = kube_server.workload_pods("DaemonSet", NS, "api")
    assert sorted(p.node or "" for p in pods) == ["sandbox-node-1", "sandbox-node-2"]
    with ReadyTracker(kube_server, "DaemonSet") as tracker:
        restart(kube_http, "DaemonSet", "r1")
        wait_until(complete, what="the rolling update")
    assert min(tracker.ready_counts) >= 1  # maxUnavailable 1 of 2 nodes
    assert not ({p.name for p in kube_server.workload_pods("DaemonSet", NS, "api")} & {p.name for p in pods})


@pytest.mark.parametrize("kind", ["StatefulSet", "DaemonSet"])
def test_fail_readiness_stalls_other_workloads_too(
    kube_server: KubeServer, kube_http: KubeHTTP, kind: str
) -> None:
    kube_http.request("POST", PATHS[kind], workload(kind, replicas=2))
    wait_until(
        lambda: (
            all(p.ready for p in kube_server.workload_pods(kind, NS, "api"))
            and len(kube_server.workload_pods(kind, NS, "api")) == 2
        ),
        what="the initial rollout",
    )
    kube_server.set_fail_readiness(kind, NS, "api")
    restart(kube_http, kind, "r1")
    wait_until(
        lambda: any(not p.ready for p in kube_server.workload_pods(kind, NS, "api")), what="a stuck pod"
    )
    pods = kube_server.workload_pods(kind, NS, "api")
    assert sum(p.ready for p in pods) == 1  # exactly one replaced pod is unavailable

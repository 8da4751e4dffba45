"""A consumer's pods and the failing-readiness fault on any API server (kwok's or a kubelet's).

The tests ask a Kubernetes two things about a consumer: which pods it runs, with the Secret
versions each one started with, and a switch that makes the pods rotator restarts from now on
never turn Ready. The emulator answers both from its rollout simulator; here they are answered
through the API alone, so they hold on the real control plane (kwok for nodes) and on a real
cluster (kind) alike:

- the pods are those the workload's selector finds, each with the Secret versions
  :class:`~rotator.sandbox.pod_start.SecretVersionRecorder` recorded on it;
- the fault is a pod-template label, FAULT_LABEL: FAULT_NEVER_READY. A pod carrying it and
  rotator's restart annotation never turns Ready. kwok honours it by a pod stage
  (rotator.sandbox.realkube); a real kubelet by the readiness probe :func:`kubelet_consumer`
  gives the container, which reads the pod's labels and annotations from a downward-API volume.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

from rotator.json_copy import clone
from rotator.models.keys import ROTATION_ID
from rotator.sandbox.pod_start import Api, PodInfo, pod_info
from rotator.sandbox.processes import ServerError
from rotator.workloads.health import rollout_health
from rotator.workloads.kinds import workload_path

JSON = dict[str, Any]

FAULT_LABEL = "kwok.rotator.dev/fault"
"""A pod-template label kwok's stages and :func:`kubelet_consumer`'s probe honour; its value
names the fault (FAULT_NEVER_READY)."""
FAULT_NEVER_READY = "never-ready-after-restart"
"""A pod labelled ``FAULT_LABEL: FAULT_NEVER_READY`` that also carries rotator's restart
annotation (``rotator.dev/rotation-id``) runs but never turns Ready: a consumer that a new
credential breaks. Its pods from before any rotator restart are Ready as usual."""

PODINFO_MOUNT = "/etc/podinfo"
"""Where :func:`kubelet_consumer` mounts the pod's own labels and annotations."""


def readiness_script(podinfo: str = PODINFO_MOUNT) -> str:
    """The consumer's readiness probe (``sh -c``), reading the downward-API files in ``podinfo``.

    The kubelet writes such a file as one ``key="value"`` line per entry. Ready unless the pod
    is both marked faulty and restarted by rotator: the kwok stage's selector, as a shell test."""
    return (
        f"! {{ grep -qxF '{FAULT_LABEL}=\"{FAULT_NEVER_READY}\"' {podinfo}/labels"
        f" && grep -q '^{ROTATION_ID}=' {podinfo}/annotations; }}"
    )


# Exits at SIGTERM (a shell as PID 1 ignores it otherwise, and each old pod would hold its
# rollout for the whole grace period).
_COMMAND = "trap 'exit 0' TERM; while true; do sleep 1; done"


def workload_pods(api: Api, kind: str, namespace: str, name: str) -> list[PodInfo]:
    """A workload's live pods, found by its selector (any kind), with the Secret versions each
    one started with: the same view the emulator's rollout simulator gives."""
    workload = api("GET", workload_path(kind, namespace, name), None)
    labels = ((workload.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if not labels:
        raise ValueError(f"{kind} {namespace}/{name} selects its pods by no label")
    selector = urllib.parse.quote(",".join(f"{key}={value}" for key, value in sorted(labels.items())))
    pods = api("GET", f"/api/v1/namespaces/{namespace}/pods?labelSelector={selector}", None)["items"]
    return [pod_info(pod) for pod in pods if not pod["metadata"].get("deletionTimestamp")]


def set_fail_readiness(
    api: Api, kind: str, namespace: str, name: str, fail: bool = True, *, timeout: float = 60.0
) -> None:
    """Make the pods rotator restarts from now on never turn Ready, or heal them (``fail=False``):
    the emulator's switch of the same name.

    The fault is a pod-template label, and a template change is a rollout: unlike the
    emulator's switch this rolls the workload once. The same patch drops rotator's restart
    annotation from the template, so that rollout's pods (on the Secret as it is) are spared
    and turn Ready; it returns once that rollout is complete. Healing is a rollout too, whose
    pods come up Ready; it returns at once."""
    path = workload_path(kind, namespace, name)
    template: JSON = {"labels": {FAULT_LABEL: FAULT_NEVER_READY if fail else None}}
    if fail:
        template["annotations"] = {ROTATION_ID: None}
    api("PATCH", path, {"spec": {"template": {"metadata": template}}})
    deadline = time.monotonic() + timeout
    while fail and not rollout_health(kind, obj := api("GET", path, None)).complete:
        if time.monotonic() >= deadline:
            raise ServerError(f"{kind} {namespace}/{name} did not roll out: {obj.get('status')}")
        time.sleep(0.1)


class ClusterConsumers:
    """:func:`workload_pods` and :func:`set_fail_readiness` over one API client: the consumer
    hooks of a real control plane or cluster (the emulator's KubeServer has the same two)."""

    def __init__(self, api: Api) -> None:
        self._api = api

    def workload_pods(self, kind: str, namespace: str, name: str) -> list[PodInfo]:
        return workload_pods(self._api, kind, namespace, name)

    def set_fail_readiness(self, kind: str, namespace: str, name: str, fail: bool = True) -> None:
        set_fail_readiness(self._api, kind, namespace, name, fail)


def kubelet_consumer(workload: Mapping[str, Any], image: str) -> JSON:
    """``workload`` made to run on a real kubelet: each container runs ``image`` (a shell
    image, e.g. busybox) idling until SIGTERM, with a readiness probe that honours the fault
    label, and every Secret reference made optional (a consumer that starts before rotator first
    writes its Secret would otherwise wait in CreateContainerConfigError). kwok ignores images
    and probes, so the result runs there as well."""
    body: JSON = clone(dict(workload))
    pod = body["spec"]["template"].setdefault("spec", {})
    pod["terminationGracePeriodSeconds"] = 2
    pod.setdefault("volumes", []).append(
        {
            "name": "podinfo",
            "downwardAPI": {
                "items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
                ]
            },
        }
    )
    for container in pod.get("containers") or []:
        container["image"] = image
        container["imagePullPolicy"] = "IfNotPresent"
        container["command"] = ["sh", "-c", _COMMAND]
        container["readinessProbe"] = {
            "exec": {"command": ["sh", "-c", readiness_script()]},
            "periodSeconds": 1,
            "failureThreshold": 1,
        }
        container.setdefault("volumeMounts", []).append(
            {"name": "podinfo", "mountPath": PODINFO_MOUNT, "readOnly": True}
        )
        for env in container.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref is not None:
                ref["optional"] = True
        for env_from in container.get("envFrom") or []:
            if "secretRef" in env_from:
                env_from["secretRef"]["optional"] = True
    return body


__all__ = [
    "FAULT_LABEL",
    "FAULT_NEVER_READY",
    "ClusterConsumers",
    "kubelet_consumer",
    "readiness_script",
    "set_fail_readiness",
    "workload_pods",
]

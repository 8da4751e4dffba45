"""A rollout simulator: controller-manager and kubelet for the Kubernetes emulator.

The rotator's Restart and Verify steps (DESIGN §1) only make sense against workloads that
actually roll: pods replaced one by one, status fields moving the way the Deployment,
StatefulSet and DaemonSet controllers move them, and a rollout that can get stuck. The emulator
stores objects but runs no controllers, so this module plays them, inside the emulator's event
loop and through the same store, so every pod and status change is a real watch event.

What it does, per workload kind:

- Deployment (RollingUpdate): surge one new pod, wait ``pod_delay`` until it is ready, then
  remove an old pod; ready pods never drop below ``replicas - maxUnavailable``. Without
  progress for ``spec.progressDeadlineSeconds`` the Progressing condition turns False with
  reason ProgressDeadlineExceeded.
- StatefulSet (RollingUpdate, OrderedReady): pods ``name-0..n-1`` created in order, updated
  from the highest ordinal down, one at a time; currentRevision/updateRevision move as in
  Kubernetes.
- DaemonSet: one pod per simulated node; updates replace one node's pod at a time.

Each pod records, in the annotation ``sandbox.rotator.dev/secret-versions``, the Secrets its
template references with their resourceVersion and ``rotator.dev/version`` at pod start: the
evidence that a rotation really reached the workload (the format, and the recorder that keeps
it on a real control plane, are in pod_start.py). The fault switch
``sandbox.rotator.dev/fail-readiness: "true"`` on a workload (or :meth:`set_fail_readiness`)
makes its new pods never become ready. As on a real cluster, a pod whose template references a
Secret that does not exist (not ``optional``) waits, ``Pending`` with its containers in
``CreateContainerConfigError`` ('secret "NAME" not found'), and starts once the Secret appears.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime
import hashlib
import json
import logging
import math
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rotator.sandbox.consumers import LOGIN_ANNOTATION, LOGIN_SECRET_ANNOTATION, PodLogins, login_target
from rotator.sandbox.kube_store import JSON, KubeStore, ResourceType, now_rfc3339
from rotator.sandbox.pod_start import (
    SECRET_VERSIONS_ANNOTATION,
    PodInfo,
    pod_info,
    secret_names,
    secret_versions,
)

DEFAULT_POD_DELAY = 0.2
"""Seconds a new pod takes to become ready: visible in a demo, short enough for tests."""

DEFAULT_PROGRESS_DEADLINE = 600.0
"""Kubernetes' default ``spec.progressDeadlineSeconds``."""

FAIL_READINESS_ANNOTATION = "sandbox.rotator.dev/fail-readiness"

WORKLOAD_KINDS: dict[str, tuple[str, str, str]] = {
    "Deployment": ("apps", "v1", "deployments"),
    "StatefulSet": ("apps", "v1", "statefulsets"),
    "DaemonSet": ("apps", "v1", "daemonsets"),
}
_PODS = ("", "v1", "pods")
_SECRETS = ("", "v1", "secrets")
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

WorkloadKey = tuple[str, str, str]  # (kind, namespace, name)
logger = logging.getLogger(__name__)
_ERROR_RETRY = 1.0  # seconds before retrying a workload whose step raised


@dataclass
class _State:
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    ready_at: dict[str, float] = field(default_factory=dict)
    #: Pods held unready by the readiness fault: they stay so while it lasts, even once the
    #: template moved on (a broken container does not heal because its template was reverted;
    #: kwok's fault is a label on the pod, the same for its life).
    held: set[str] = field(default_factory=set)
    last_progress: float = 0.0
    revision: str = ""
    deadline_exceeded: bool = False


def template_hash(template: Mapping[str, Any]) -> str:
    """A stable short hash of a pod template (what pod-template-hash stands for)."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    return digest[:10]


def required_secret_names(spec: Mapping[str, Any]) -> list[str]:
    """Secrets a pod cannot start without: every reference of :func:`secret_names` not marked
    ``optional: true``. While one is missing the kubelet holds the container in
    ``CreateContainerConfigError`` (env) or ``ContainerCreating`` (volumes); the pod is not ready."""
    names: list[str] = []
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for env in container.get("env") or []:
            names.append(_required((env.get("valueFrom") or {}).get("secretKeyRef"), "name"))
        for env_from in container.get("envFrom") or []:
            names.append(_required(env_from.get("secretRef"), "name"))
    for volume in spec.get("volumes") or []:
        names.append(_required(volume.get("secret"), "secretName"))
        for source in (volume.get("projected") or {}).get("sources") or []:
            names.append(_required(source.get("secret"), "name"))
    return sorted({name for name in names if name})


def _required(ref: Mapping[str, Any] | None, field: str) -> str:
    return "" if not ref or ref.get("optional") else str(ref.get(field) or "")


def _scaled(value: Any, replicas: int, default: str, *, round_up: bool) -> int:
    """Resolve maxSurge/maxUnavailable (int or percentage) as the controllers do."""
    raw = default if value is None else value
    if isinstance(raw, int):
        return raw
    text = str(raw)
    if text.endswith("%"):
        exact = replicas * int(text[:-1]) / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(text)


def _is_ready(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


class RolloutSimulator:
    """Plays the workload controllers and kubelet over a :class:`KubeStore`.

    Must be started and stopped inside the store's event loop. ``pod_delay`` is seconds per
    pod start; ``daemonset_nodes`` is how many nodes DaemonSets see; ``clock`` is a monotonic
    clock in seconds (injected so progress deadlines can be tested).
    """

    def __init__(
        self,
        store: KubeStore,
        *,
        pod_delay: float = DEFAULT_POD_DELAY,
        daemonset_nodes: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.pod_delay = pod_delay
        self.nodes = [f"sandbox-node-{i}" for i in range(1, daemonset_nodes + 1)]
        self._clock = clock
        self._states: dict[WorkloadKey, _State] = {}
        self._fail: set[WorkloadKey] = set()
        self._running = False
        self.logins = PodLogins()
        self._loop_ref: asyncio.AbstractEventLoop | None = None

    # ---------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Begin reacting to workload changes (and adopt workloads that already exist)."""
        self._running = True
        self._loop_ref = asyncio.get_running_loop()
        self.store.add_listener(self._on_event, {*WORKLOAD_KINDS.values(), _SECRETS, _PODS})
        for kind, (group, version, plural) in WORKLOAD_KINDS.items():
            rt = self.store.type_for(group, version, plural)
            for obj in self.store.list_objects(rt, None)[0]:
                self._poke((kind, obj["metadata"]["namespace"], obj["metadata"]["name"]))

    async def stop(self) -> None:
        """Stop every workload loop and wait for them (no task outlives the simulator)."""
        if not self._running:
            return
        self._running = False
        self.store.remove_listener(self._on_event)
        tasks = [state.task for state in self._states.values() if state.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._states.clear()
        self.logins.close()

    def set_fail_readiness(self, kind: str, namespace: str, name: str, fail: bool = True) -> None:
        """Make a workload's new pods never become ready (``fail=False`` heals it)."""
        key = (kind, namespace, name)
        if fail:
            self._fail.add(key)
        else:
            self._fail.discard(key)
        self._poke(key)

    def workload_pods(self, kind: str, namespace: str, name: str) -> list[PodInfo]:
        """The live pods of a workload, with the Secret versions each one started with."""
        rt = self._workload_type(kind)
        obj = self.store.find(rt, namespace, name)
        if obj is None:
            return []
        pods = []
        for pod in self._owned_pods(obj):
            logins, refused = self.logins.counts(pod["metadata"]["name"])
            pods.append(dataclasses.replace(pod_info(pod), logins=logins, refused_logins=refused))
        return pods

    # ------------------------------------------------------------------------- event wiring

    def _workload_type(self, kind: str) -> ResourceType:
        if kind not in WORKLOAD_KINDS:
            raise ValueError(f"not a workload kind: {kind!r}")
        return self.store.type_for(*WORKLOAD_KINDS[kind])

    def _on_event(self, event_type: str, rt: ResourceType, obj: JSON) -> None:
        for kind, type_key in WORKLOAD_KINDS.items():
            if rt.key == type_key:
                self._poke((kind, obj["metadata"]["namespace"], obj["metadata"]["name"]))
        # A Secret that pods wait for may just have appeared (the kubelet retries at once), or a
        # pod was deleted by someone else (its controller replaces it at once). Pods wait for a
        # Secret's existence only, so a changed one wakes nobody (every rotation changes one).
        if (rt.key == _SECRETS and event_type == "ADDED") or (rt.key == _PODS and event_type == "DELETED"):
            namespace = obj["metadata"].get("namespace")
            for key in [key for key in self._states if key[1] == namespace]:
                self._poke(key)

    def _poke(self, key: WorkloadKey) -> None:
        if not self._running:
            return
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = _State(last_progress=self._clock())
        if state.task is None or state.task.done():
            state.task = asyncio.get_running_loop().create_task(self._loop(key, state), name=f"rollout-{key}")
        state.wake.set()

    async def _loop(self, key: WorkloadKey, state: _State) -> None:
        kind, namespace, name = key
        rt = self._workload_type(kind)
        # Checking the flag (not only relying on cancellation) matters: on Python 3.11 a
        # cancellation racing with a timeout can be swallowed, and stop() would wait forever.
        while self._running:
            state.wake.clear()
            obj = self.store.find(rt, namespace, name)
            if obj is None:
                self._states.pop(key, None)
                return
            try:
                if kind == "Deployment":
                    delay = self._step_deployment(key, obj, state)
                elif kind == "StatefulSet":
                    delay = self._step_statefulset(key, obj, state)
                else:
                    delay = self._step_daemonset(key, obj, state)
            except Exception:  # a malformed workload must not kill the controller: log, retry later
                logger.exception("rollout simulator failed on %s %s/%s", kind, namespace, name)
                delay = _ERROR_RETRY
            if delay is not None and delay <= 0:
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await state.wake.wait()

    # ------------------------------------------------------------------------ shared pieces

    def _failing(self, key: WorkloadKey, obj: JSON) -> bool:
        annotations = obj["metadata"].get("annotations") or {}
        return key in self._fail or str(annotations.get(FAIL_READINESS_ANNOTATION, "")).lower() == "true"

    def _owned_pods(self, obj: JSON) -> list[JSON]:
        uid = obj["metadata"]["uid"]
        pods_rt = self.store.type_for(*_PODS)
        pods, _ = self.store.list_objects(pods_rt, obj["metadata"]["namespace"])
        return [
            pod
            for pod in pods
            if any(ref.get("uid") == uid for ref in pod["metadata"].get("ownerReferences") or [])
            and not pod["metadata"].get("deletionTimestamp")
        ]

    def _secret_versions(self, namespace: str, template: Mapping[str, Any]) -> str:
        """The annotation a new pod gets: what it would read from each Secret at start."""
        secrets_rt = self.store.type_for(*_SECRETS)
        return secret_versions(
            {name: self.store.find(secrets_rt, namespace, name) for name in secret_names(template)}
        )

    def _create_pod(
        self,
        obj: JSON,
        state: _State,
        revision: str,
        *,
        name: str | None = None,
        node: str | None = None,
    ) -> None:
        """Create a pod (Running, not yet Ready) that turns ready after ``pod_delay``."""
        kind, meta = obj["kind"], obj["metadata"]
        template = (obj.get("spec") or {}).get("template") or {}
        template_meta = template.get("metadata") or {}
        revision_label = "pod-template-hash" if kind == "Deployment" else "controller-revision-hash"
        suffix = "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))
        pod_name = name or (
            f"{meta['name']}-{revision}-{suffix}" if kind == "Deployment" else f"{meta['name']}-{suffix}"
        )
        spec = json.loads(json.dumps(template.get("spec") or {}))
        if node is not None:
            spec["nodeName"] = node
        annotations = dict(template_meta.get("annotations") or {})
        annotations[SECRET_VERSIONS_ANNOTATION] = self._secret_versions(meta["namespace"], template)
        pod = {
            "metadata": {
                "name": pod_name,
                "labels": {**(template_meta.get("labels") or {}), revision_label: revision},
                "annotations": annotations,
                "ownerReferences": [
                    {
                        "apiVersion": obj["apiVersion"],
                        "kind": kind,
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": spec,
        }
        pods_rt = self.store.type_for(*_PODS)
        created = self.store.create(pods_rt, meta["namespace"], pod)
        self._set_pod_ready(created, ready=False)
        state.ready_at[pod_name] = self._clock() + self.pod_delay
        state.last_progress = self._clock()

    def _missing_secrets(self, pod: JSON) -> list[str]:
        secrets_rt = self.store.type_for(*_SECRETS)
        namespace = pod["metadata"]["namespace"]
        required = required_secret_names(pod.get("spec") or {})
        return [name for name in required if self.store.find(secrets_rt, namespace, name) is None]

    def _set_pod_ready(self, pod: JSON, *, ready: bool, waiting_for: str | None = None) -> None:
        """Write the pod's status; ``waiting_for`` names a missing Secret the containers wait on
        (``CreateContainerConfigError``, phase Pending), written only when not already said."""
        now = now_rfc3339(datetime_now)
        flag = "True" if ready else "False"
        containers = (pod.get("spec") or {}).get("containers") or []
        waiting: JSON = {}
        if waiting_for is not None:
            message = f'secret "{waiting_for}" not found'
            waiting = {"waiting": {"reason": "CreateContainerConfigError", "message": message}}
            statuses = (pod.get("status") or {}).get("containerStatuses") or []
            if statuses and all(c.get("state") == waiting for c in statuses):
                return
        pod["status"] = {
            "phase": "Running" if waiting_for is None else "Pending",
            "startTime": (pod.get("status") or {}).get("startTime", now),
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
                {"type": "Ready", "status": flag, "lastTransitionTime": now},
            ],
            "containerStatuses": [
                {
                    "name": c.get("name", "main"),
                    "ready": ready,
                    "started": waiting_for is None,
                    "restartCount": 0,
                    "image": c.get("image", ""),
                    "state": {"running": {"startedAt": now}} if waiting_for is None else waiting,
                }
                for c in containers
            ],
        }
        pods_rt = self.store.type_for(*_PODS)
        self.store.replace(pods_rt, pod["metadata"]["namespace"], pod["metadata"]["name"], pod, "status")

    def _start_logins(self, pod: JSON) -> bool:
        """A pod of a workload annotated for logins logs in, for as long as it lives, with the
        credential its Secret holds when its container is created (once every Secret it needs
        exists, as a kubelet resolves env then); see :mod:`rotator.sandbox.consumers`. True if
        the pod logs in (now or already)."""
        meta = pod["metadata"]
        if self.logins.logs_in(meta["name"]):
            return True
        annotations = meta.get("annotations") or {}
        target = login_target(str(annotations.get(LOGIN_ANNOTATION, "")))
        consumed = secret_names({"spec": pod.get("spec") or {}})
        secret_name = annotations.get(LOGIN_SECRET_ANNOTATION) or (consumed[0] if consumed else None)
        owner = next((ref for ref in meta.get("ownerReferences") or [] if ref.get("controller")), None)
        if target is None or not secret_name or owner is None:
            return False
        secret = self.store.find(self.store.type_for(*_SECRETS), meta["namespace"], secret_name)
        data = (secret or {}).get("data") or {}
        username, password = (base64.b64decode(data.get(k, "")).decode() for k in ("username", "password"))
        key: WorkloadKey = (owner["kind"], meta["namespace"], owner["name"])
        loop = self._loop_ref

        def wake() -> None:
            if loop is not None and self._running:
                loop.call_soon_threadsafe(self._poke, key)

        self.logins.start_pod(meta["name"], target, username, password, wake)
        return True

    def _delete_pod(self, pod: JSON, state: _State) -> None:
        pods_rt = self.store.type_for(*_PODS)
        self.logins.stop_pod(pod["metadata"]["name"])
        state.ready_at.pop(pod["metadata"]["name"], None)
        state.held.discard(pod["metadata"]["name"])
        if self.store.find(pods_rt, pod["metadata"]["namespace"], pod["metadata"]["name"]) is not None:
            self.store.delete(pods_rt, pod["metadata"]["namespace"], pod["metadata"]["name"])

    def _promote_ready(self, pods: list[JSON], state: _State, failing: bool, revision: str) -> float | None:
        """Kubelet: pods become ready ``pod_delay`` after start, unless their rollout is failing.

        Returns 0 when something changed, the seconds until the next pod is due, or None.
        """
        now = self._clock()
        next_due: float | None = None
        if not failing:
            state.held.clear()
        for pod in pods:
            if _is_ready(pod):
                continue
            labels = pod["metadata"].get("labels") or {}
            pod_revision = labels.get("pod-template-hash") or labels.get("controller-revision-hash")
            if failing and (pod_revision == revision or pod["metadata"]["name"] in state.held):
                state.held.add(pod["metadata"]["name"])
                continue
            missing = self._missing_secrets(pod)
            if missing:
                # As the kubelet: the container cannot be created until the Secret exists; the
                # pod starts its ready delay only once it does.
                state.ready_at.pop(pod["metadata"]["name"], None)
                self._set_pod_ready(pod, ready=False, waiting_for=missing[0])
                continue
            if self._start_logins(pod) and not self.logins.first_login(pod["metadata"]["name"]):
                continue  # not ready before its first login succeeded (woken when it answers)
            due = state.ready_at.setdefault(pod["metadata"]["name"], now + self.pod_delay)
            if due <= now:
                self._set_pod_ready(pod, ready=True)
                state.ready_at.pop(pod["metadata"]["name"], None)
                state.last_progress = now
                return 0.0
            next_due = due - now if next_due is None else min(next_due, due - now)
        return next_due

    def _write_status(self, rt: ResourceType, obj: JSON, status: JSON) -> None:
        if obj.get("status") == status:
            return
        self.store.replace(
            rt, obj["metadata"]["namespace"], obj["metadata"]["name"], {**obj, "status": status}, "status"
        )

    @staticmethod
    def _condition(previous: JSON, type_: str, status: str, reason: str, message: str, now: str) -> JSON:
        """Build a condition, keeping its timestamps while nothing about it changes."""
        old = next((c for c in previous.get("conditions") or [] if c.get("type") == type_), None)
        if old and (old.get("status"), old.get("reason"), old.get("message")) == (status, reason, message):
            return dict(old)
        transition = old["lastTransitionTime"] if old and old.get("status") == status else now
        return {
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message,
            "lastUpdateTime": now,
            "lastTransitionTime": transition,
        }

    # -------------------------------------------------------------------------- Deployment

    def _step_deployment(self, key: WorkloadKey, obj: JSON, state: _State) -> float | None:
        rt = self._workload_type("Deployment")
        spec = obj.get("spec") or {}
        desired = int(spec.get("replicas", 1))
        revision = template_hash(spec.get("template") or {})
        if revision != state.revision:
            state.revision, state.last_progress, state.deadline_exceeded = revision, self._clock(), False
        failing = self._failing(key, obj)
        rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        max_surge = _scaled(rolling.get("maxSurge"), desired, "25%", round_up=True)
        max_unavailable = _scaled(rolling.get("maxUnavailable"), desired, "25%", round_up=False)
        if max_surge == 0 and max_unavailable == 0:
            max_surge = 1
        pods = self._owned_pods(obj)
        due = self._promote_ready(pods, state, failing, revision)
        if due == 0:
            return 0.0
        new = [p for p in pods if p["metadata"]["labels"].get("pod-template-hash") == revision]
        old = [p for p in pods if p not in new]
        ready_new = [p for p in new if _is_ready(p)]
        ready_old = [p for p in old if _is_ready(p)]
        acted = False
        if len(new) > desired:  # scale down: not-ready pods first
            self._delete_pod(sorted(new, key=_is_ready)[0], state)
            acted = True
        elif old and any(not _is_ready(p) for p in old):  # unavailable old pods serve nobody
            self._delete_pod(next(p for p in old if not _is_ready(p)), state)
            acted = True
        elif old and (len(ready_new) >= desired or len(ready_new) + len(ready_old) > desired):
            self._delete_pod(ready_old[0], state)
            acted = True
        elif len(new) < desired and len(pods) < desired + max_surge and len(ready_new) == len(new):
            self._create_pod(obj, state, revision)
            acted = True
        elif (
            len(new) < desired
            and old
            and max_surge == 0
            and len(ready_new) + len(ready_old) - 1 >= desired - max_unavailable
        ):
            self._delete_pod(ready_old[0], state)
            acted = True
        if acted:
            return 0.0
        pods = self._owned_pods(obj)
        new = [p for p in pods if p["metadata"]["labels"].get("pod-template-hash") == revision]
        ready = [p for p in pods if _is_ready(p)]
        complete = len(new) == desired and len(pods) == desired and all(_is_ready(p) for p in new)
        deadline = float(spec.get("progressDeadlineSeconds", DEFAULT_PROGRESS_DEADLINE))
        if not complete and self._clock() - state.last_progress > deadline:
            state.deadline_exceeded = True
        if complete:
            state.deadline_exceeded = False
        previous = obj.get("status") or {}
        now = now_rfc3339(datetime_now)
        rs_name = f"{obj['metadata']['name']}-{revision}"
        available = len(ready)
        if available >= desired - max_unavailable:
            available_cond = self._condition(
                previous,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                now,
            )
        else:
            available_cond = self._condition(
                previous,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                now,
            )
        if complete:
            progressing = self._condition(
                previous,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
                now,
            )
        elif state.deadline_exceeded:
            progressing = self._condition(
                previous,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{rs_name}" has timed out progressing.',
                now,
            )
        else:
            progressing = self._condition(
                previous,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                f'ReplicaSet "{rs_name}" is progressing.',
                now,
            )
        status: JSON = {
            "observedGeneration": obj["metadata"].get("generation", 1),
            "replicas": len(pods),
            "updatedReplicas": len(new),
            "readyReplicas": available,
            "availableReplicas": available,
            "conditions": [available_cond, progressing],
        }
        if desired - available > 0:
            status["unavailableReplicas"] = desired - available
        self._write_status(rt, obj, status)
        if complete:
            return due
        if state.deadline_exceeded:
            return due
        remaining = max(deadline - (self._clock() - state.last_progress), 0.0) + 0.01
        return remaining if due is None else min(due, remaining)

    # ------------------------------------------------------------------------- StatefulSet

    def _step_statefulset(self, key: WorkloadKey, obj: JSON, state: _State) -> float | None:
        rt = self._workload_type("StatefulSet")
        spec, name = obj.get("spec") or {}, obj["metadata"]["name"]
        desired = int(spec.get("replicas", 1))
        revision = f"{name}-{template_hash(spec.get('template') or {})}"
        failing = self._failing(key, obj)
        on_delete = (spec.get("updateStrategy") or {}).get("type") == "OnDelete"
        pods = {p["metadata"]["name"]: p for p in self._owned_pods(obj)}
        due = self._promote_ready(list(pods.values()), state, failing, revision)
        if due == 0:
            return 0.0

        def rev(pod: JSON) -> str:
            return str(pod["metadata"]["labels"].get("controller-revision-hash", ""))

        acted = False
        extra = sorted(
            (p for n, p in pods.items() if int(n.rsplit("-", 1)[1]) >= desired),
            key=lambda p: -int(p["metadata"]["name"].rsplit("-", 1)[1]),
        )
        if extra:
            self._delete_pod(extra[0], state)
            acted = True
        else:
            for ordinal in range(desired):
                pod_name = f"{name}-{ordinal}"
                if pod_name not in pods:
                    if all(_is_ready(pods[f"{name}-{i}"]) for i in range(ordinal)):
                        self._create_pod(obj, state, revision, name=pod_name)
                        acted = True
                    break
            else:
                # OrderedReady, as the real controller (and its documented "forced rollback"
                # limit): a pod is replaced only while every pod is Ready. A pod stuck unready on
                # a bad revision is never replaced by reverting the template: someone deletes it.
                all_ready = all(_is_ready(p) for p in pods.values())
                stale = [o for o in reversed(range(desired)) if rev(pods[f"{name}-{o}"]) != revision]
                if stale and not on_delete and all_ready:
                    self._delete_pod(pods[f"{name}-{stale[0]}"], state)
                    acted = True
        if acted:
            return 0.0
        current_pods = self._owned_pods(obj)
        previous = obj.get("status") or {}
        updated = [p for p in current_pods if rev(p) == revision]
        ready = [p for p in current_pods if _is_ready(p)]
        current_revision = previous.get("currentRevision") or revision
        if len(updated) == desired and len(ready) == desired and len(current_pods) == desired:
            current_revision = revision
        status: JSON = {
            "observedGeneration": obj["metadata"].get("generation", 1),
            "replicas": len(current_pods),
            "readyReplicas": len(ready),
            "availableReplicas": len(ready),
            "currentReplicas": len([p for p in current_pods if rev(p) == current_revision]),
            "updatedReplicas": len(updated),
            "currentRevision": current_revision,
            "updateRevision": revision,
            "collisionCount": 0,
        }
        self._write_status(rt, obj, status)
        return due

    # --------------------------------------------------------------------------- DaemonSet

    def _step_daemonset(self, key: WorkloadKey, obj: JSON, state: _State) -> float | None:
        rt = self._workload_type("DaemonSet")
        spec = obj.get("spec") or {}
        revision = template_hash(spec.get("template") or {})
        failing = self._failing(key, obj)
        pods = self._owned_pods(obj)
        due = self._promote_ready(pods, state, failing, revision)
        if due == 0:
            return 0.0

        def rev(pod: JSON) -> str:
            return str(pod["metadata"]["labels"].get("controller-revision-hash", ""))

        by_node: dict[str, JSON] = {}
        for pod in pods:
            node = pod["spec"].get("nodeName", "")
            if node in by_node or node not in self.nodes:
                self._delete_pod(pod, state)
                return 0.0
            by_node[node] = pod
        missing = [node for node in self.nodes if node not in by_node]
        if missing:
            self._create_pod(obj, state, revision, node=missing[0])
            return 0.0
        stale = [pod for pod in pods if rev(pod) != revision]
        unavailable = [pod for pod in pods if not _is_ready(pod)]
        max_unavailable = (
            _scaled(
                ((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("maxUnavailable"),
                len(self.nodes),
                "1",
                round_up=False,
            )
            or 1
        )
        stale_unready = [pod for pod in stale if not _is_ready(pod)]
        if stale_unready:
            self._delete_pod(stale_unready[0], state)
            return 0.0
        if stale and len(unavailable) < max_unavailable:
            self._delete_pod(stale[0], state)
            return 0.0
        ready = [pod for pod in pods if _is_ready(pod)]
        status: JSON = {
            "observedGeneration": obj["metadata"].get("generation", 1),
            "desiredNumberScheduled": len(self.nodes),
            "currentNumberScheduled": len(pods),
            "numberMisscheduled": 0,
            "numberReady": len(ready),
            "numberAvailable": len(ready),
            "updatedNumberScheduled": len([p for p in pods if rev(p) == revision]),
        }
        if len(self.nodes) - len(ready) > 0:
            status["numberUnavailable"] = len(self.nodes) - len(ready)
        self._write_status(rt, obj, status)
        return due


def datetime_now() -> datetime.datetime:
    """Wall clock for timestamps in pod and workload status (kept apart from the step clock)."""
    return datetime.datetime.now(datetime.UTC)

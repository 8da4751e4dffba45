"""Has a restarted workload finished rolling out? A pure function of the object the API returns.

The rules follow ``kubectl rollout status`` (kubectl/pkg/polymorphichelpers/rollout_status.go),
including its messages, so what rotator reports reads like what an operator would see by hand.
They differ where rotator needs more than "kubectl would stop waiting":

* Deployment: also requires ``readyReplicas`` to reach ``spec.replicas`` and no
  ``unavailableReplicas``; a *paused* Deployment is ``failed`` because our restart will never
  roll out while it is paused.
* StatefulSet/DaemonSet with the ``OnDelete`` strategy are ``failed`` (kubectl just declines):
  a template annotation does not replace their pods, so the consumers would keep the old
  credential and revoking it would break them.
* A StatefulSet with ``rollingUpdate.partition > 0`` is ``failed`` for the same reason: pods
  below the partition ordinal are never restarted (kubectl calls such a rollout complete).
* StatefulSet completion is judged by ``currentRevision == updateRevision`` (the controller
  only equalises them once every pod is updated and ready), plus ``availableReplicas`` when the
  API reports it (``minReadySeconds``).

``failed`` makes the verify step roll back at once instead of waiting for ``verify.timeout``.
Absent status fields read as 0: the API omits zero-valued integers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rotator.models.spec import WorkloadKind
from rotator.workloads.kinds import kind_for

__all__ = ["PROGRESS_DEADLINE_EXCEEDED", "RolloutHealth", "RolloutState", "rollout_health"]

#: Deployment condition reason set by the controller when ``progressDeadlineSeconds`` passes.
PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"


class RolloutState(StrEnum):
    COMPLETE = "complete"
    PROGRESSING = "progressing"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RolloutHealth:
    """Where a workload's rollout stands, and a kubectl-like sentence saying why."""

    state: RolloutState
    message: str

    @property
    def complete(self) -> bool:
        return self.state is RolloutState.COMPLETE

    @property
    def failed(self) -> bool:
        return self.state is RolloutState.FAILED


def _progressing(message: str) -> RolloutHealth:
    return RolloutHealth(RolloutState.PROGRESSING, message)


def _failed(message: str) -> RolloutHealth:
    return RolloutHealth(RolloutState.FAILED, message)


def _complete(message: str) -> RolloutHealth:
    return RolloutHealth(RolloutState.COMPLETE, message)


def _map(obj: Mapping[str, Any], *path: str) -> Mapping[str, Any]:
    node: Any = obj
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else {}


def _int(obj: Mapping[str, Any], key: str, default: int = 0) -> int:
    value = obj.get(key)
    # bool is an int subclass; a JSON true is never a count.
    return value if isinstance(value, int) and not isinstance(value, bool) else default


class _View:
    """The fields every rule reads, with the API's defaults applied."""

    def __init__(self, obj: Mapping[str, Any]) -> None:
        self.metadata = _map(obj, "metadata")
        self.spec = _map(obj, "spec")
        self.status = _map(obj, "status")
        self.name = str(self.metadata.get("name", ""))
        self.generation = _int(self.metadata, "generation")
        self.observed = _int(self.status, "observedGeneration")
        # spec.replicas defaults to 1 server-side; an object without it means 1.
        self.replicas = _int(self.spec, "replicas", 1)
        self.strategy = _map(self.spec, "updateStrategy")
        self.strategy_type = str(self.strategy.get("type") or "RollingUpdate")

    def stat(self, key: str) -> int:
        return _int(self.status, key)


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    conditions = status.get("conditions")
    if not isinstance(conditions, list):
        return None
    for condition in conditions:
        if isinstance(condition, Mapping) and condition.get("type") == kind:
            return condition
    return None


def _deployment(obj: Mapping[str, Any]) -> RolloutHealth:
    view = _View(obj)
    name = view.name
    if view.spec.get("paused") is True:
        return _failed(f'deployment "{name}" is paused: the restart will not roll out until it is resumed')
    if view.generation > view.observed:
        return _progressing("Waiting for deployment spec update to be observed...")
    progressing = _condition(view.status, "Progressing")
    if (
        progressing is not None
        and progressing.get("reason") == PROGRESS_DEADLINE_EXCEEDED
        and progressing.get("status") == "False"
    ):
        detail = progressing.get("message")
        suffix = f": {detail}" if isinstance(detail, str) and detail else ""
        return _failed(f'deployment "{name}" exceeded its progress deadline{suffix}')
    waiting = f'Waiting for deployment "{name}" rollout to finish: '
    updated, replicas = view.stat("updatedReplicas"), view.replicas
    if updated < replicas:
        return _progressing(f"{waiting}{updated} out of {replicas} new replicas have been updated...")
    total = view.stat("replicas")
    if total > updated:
        return _progressing(f"{waiting}{total - updated} old replicas are pending termination...")
    available = view.stat("availableReplicas")
    if available < updated:
        return _progressing(f"{waiting}{available} of {updated} updated replicas are available...")
    ready = view.stat("readyReplicas")
    if ready < replicas:
        return _progressing(f"{waiting}{ready} of {replicas} updated replicas are ready...")
    unavailable = view.stat("unavailableReplicas")
    if unavailable > 0:
        return _progressing(f"{waiting}{unavailable} replicas are unavailable...")
    return _complete(f'deployment "{name}" successfully rolled out')


def _statefulset(obj: Mapping[str, Any]) -> RolloutHealth:
    view = _View(obj)
    name = view.name
    if view.strategy_type != "RollingUpdate":
        return _failed(
            f'statefulset "{name}" uses the {view.strategy_type} update strategy: a restart does not '
            "replace its pods, so they would keep the old credential"
        )
    partition = _int(_map(view.strategy, "rollingUpdate"), "partition")
    if partition > 0:
        return _failed(
            f'statefulset "{name}" has rollingUpdate.partition={partition}: pods with an ordinal below '
            f"{partition} are not restarted, so they would keep the old credential"
        )
    if view.observed == 0 or view.generation > view.observed:
        return _progressing("Waiting for statefulset spec update to be observed...")
    ready, replicas = view.stat("readyReplicas"), view.replicas
    if ready < replicas:
        return _progressing(f"Waiting for {replicas - ready} pods to be ready...")
    update_revision = str(view.status.get("updateRevision", ""))
    current_revision = str(view.status.get("currentRevision", ""))
    if update_revision != current_revision:
        updated = view.stat("updatedReplicas")
        return _progressing(
            f"waiting for statefulset rolling update to complete {updated} pods "
            f"at revision {update_revision}..."
        )
    if "availableReplicas" in view.status:
        available = view.stat("availableReplicas")
        if available < replicas:
            return _progressing(f"Waiting for {replicas - available} pods to be available...")
    current = view.stat("currentReplicas")
    return _complete(f"statefulset rolling update complete {current} pods at revision {current_revision}...")


def _daemonset(obj: Mapping[str, Any]) -> RolloutHealth:
    view = _View(obj)
    name = view.name
    if view.strategy_type != "RollingUpdate":
        return _failed(
            f'daemon set "{name}" uses the {view.strategy_type} update strategy: a restart does not '
            "replace its pods, so they would keep the old credential"
        )
    if view.generation > view.observed:
        return _progressing("Waiting for daemon set spec update to be observed...")
    waiting = f'Waiting for daemon set "{name}" rollout to finish: '
    desired = view.stat("desiredNumberScheduled")
    updated = view.stat("updatedNumberScheduled")
    if updated < desired:
        return _progressing(f"{waiting}{updated} out of {desired} new pods have been updated...")
    available = view.stat("numberAvailable")
    if available < desired:
        return _progressing(f"{waiting}{available} of {desired} updated pods are available...")
    unavailable = view.stat("numberUnavailable")
    if unavailable > 0:
        return _progressing(f"{waiting}{unavailable} pods are unavailable...")
    return _complete(f'daemon set "{name}" successfully rolled out')


_RULES: Mapping[str, Callable[[Mapping[str, Any]], RolloutHealth]] = {
    WorkloadKind.DEPLOYMENT: _deployment,
    WorkloadKind.STATEFUL_SET: _statefulset,
    WorkloadKind.DAEMON_SET: _daemonset,
}


def rollout_health(kind: str, obj: Mapping[str, Any]) -> RolloutHealth:
    """Judge one workload's rollout from the object as ``GET`` returns it (a plain dict).

    Raises ValueError for a kind rotator does not support (see :mod:`rotator.workloads.kinds`).
    """
    return _RULES[kind_for(kind).kind](obj)

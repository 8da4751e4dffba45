"""Which Secrets does a pod spec consume?

A pure scan, used to warn when a restart target does not actually read the policy's Secret
(a typo in ``restart.targets`` would otherwise restart the wrong workload and leave the real
consumer on the old credential until revocation breaks it).

Counted as consumption, because the containers see the value:

* ``containers[] / initContainers[] / ephemeralContainers[]``: ``env[].valueFrom.secretKeyRef``
  and ``envFrom[].secretRef``;
* ``volumes[].secret.secretName`` and ``volumes[].projected.sources[].secret.name``.

Not counted: ``imagePullSecrets`` (the kubelet uses them to pull images, the app never sees
them) and CSI ``nodePublishSecretRef`` (handed to the driver, not to the app). ``optional``
references still count: when present, the Secret is consumed.

The same scan is ``spec.restart.auto``'s discovery: :func:`restart_plan` decides, from the
workloads listed in the policy's namespace (the three supported kinds, never Secrets), which ones
a rotation restarts, explicit targets first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from rotator.workloads.kinds import KINDS, pod_spec_of

__all__ = [
    "Consumer",
    "consumes_secret",
    "discovered_consumers",
    "restart_plan",
    "secret_names",
    "workload_secret_names",
]

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


def _mappings(value: Any) -> Iterator[Mapping[str, Any]]:
    """The mapping items of a list field, tolerating absent/null/malformed fields."""
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, Mapping))


def _get(obj: Mapping[str, Any], *path: str) -> Any:
    node: Any = obj
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _names(candidates: Iterable[Any]) -> Iterator[str]:
    yield from (name for name in candidates if isinstance(name, str) and name)


def _container_refs(pod_spec: Mapping[str, Any]) -> Iterator[Any]:
    for field in _CONTAINER_LISTS:
        for container in _mappings(pod_spec.get(field)):
            for env in _mappings(container.get("env")):
                yield _get(env, "valueFrom", "secretKeyRef", "name")
            for source in _mappings(container.get("envFrom")):
                yield _get(source, "secretRef", "name")


def _volume_refs(pod_spec: Mapping[str, Any]) -> Iterator[Any]:
    for volume in _mappings(pod_spec.get("volumes")):
        yield _get(volume, "secret", "secretName")
        for source in _mappings(_get(volume, "projected", "sources")):
            yield _get(source, "secret", "name")


def secret_names(pod_spec: Mapping[str, Any]) -> frozenset[str]:
    """Names of the Secrets the pod's containers read (env, envFrom, volumes)."""
    return frozenset(_names(_container_refs(pod_spec))) | frozenset(_names(_volume_refs(pod_spec)))


def consumes_secret(pod_spec: Mapping[str, Any], secret_name: str) -> bool:
    """Whether the pod spec reads the named Secret."""
    return secret_name in secret_names(pod_spec)


def workload_secret_names(kind: str, obj: Mapping[str, Any]) -> frozenset[str]:
    """Secrets referenced by a workload object's pod template (empty if it has none)."""
    pod_spec = pod_spec_of(kind, obj)
    return frozenset() if pod_spec is None else secret_names(pod_spec)


@dataclass(frozen=True, slots=True)
class Consumer:
    """A workload a rotation restarts: named in ``spec.restart.targets`` (``explicit``) or found
    by ``spec.restart.auto``. The difference matters when it is missing: an explicit target that
    does not exist is a spec error, a discovered one that vanished simply has nothing to restart."""

    kind: str
    name: str
    explicit: bool

    @property
    def key(self) -> str:
        """``Kind/name``, as ``status.rotation.restartedTargets`` records it."""
        return f"{self.kind}/{self.name}"


def discovered_consumers(
    listed: Mapping[str, Iterable[Mapping[str, Any]]], secret_name: str
) -> list[tuple[str, str]]:
    """(kind, name) of every listed workload whose pod template reads ``secret_name``, in the
    kinds table's order and by name (a stable order: throttled runs restart the same ones first).

    ``listed`` maps a kind to the items of its namespaced list. A workload already being deleted
    is left out: its rollout may never complete, and its pods are going away anyway."""
    found: list[tuple[str, str]] = []
    for kind in KINDS:
        names = set()
        for obj in listed.get(kind, ()):
            metadata = obj.get("metadata")
            if not isinstance(metadata, Mapping) or metadata.get("deletionTimestamp"):
                continue
            name = metadata.get("name")
            if isinstance(name, str) and name and secret_name in workload_secret_names(kind, obj):
                names.add(name)
        found.extend((str(kind), name) for name in sorted(names))
    return found


def restart_plan(
    explicit: Iterable[tuple[str, str]],
    secret_name: str,
    listed: Mapping[str, Iterable[Mapping[str, Any]]] | None,
) -> tuple[Consumer, ...]:
    """What a rotation restarts: the explicit targets in spec order, then (when ``listed`` is
    given, i.e. ``restart.auto``) every discovered consumer not already named; each workload once."""
    plan = [Consumer(str(kind), name, explicit=True) for kind, name in explicit]
    named = {(c.kind, c.name) for c in plan}
    if listed is not None:
        for kind, name in discovered_consumers(listed, secret_name):
            if (kind, name) not in named:
                plan.append(Consumer(kind, name, explicit=False))
    return tuple(plan)

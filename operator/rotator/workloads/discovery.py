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
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from rotator.workloads.kinds import pod_spec_of

__all__ = ["consumes_secret", "secret_names", "workload_secret_names"]

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

"""The workload kinds rotator can restart, and where their pieces live.

One small table instead of ``if kind == ...`` branches across the restarter, rollout health and
discovery: adding a kind is one row here plus its health rule. All three kinds share the
``apps/v1`` shape (pod template at ``spec.template``), but the path is data so a kind that nests
it differently (e.g. a CronJob's ``spec.jobTemplate.spec.template``) fits without new code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from rotator.models.spec import WorkloadKind

__all__ = ["KINDS", "KindInfo", "kind_for", "pod_spec_of", "pod_template_of", "workload_path"]


@dataclass(frozen=True, slots=True)
class KindInfo:
    """How to address one workload kind through the API and find its pod template."""

    kind: str
    group: str
    version: str
    plural: str
    #: Keys from the object root to the pod template (``{metadata, spec}``).
    template_path: tuple[str, ...] = ("spec", "template")

    @property
    def api_version(self) -> str:
        """``apiVersion`` as written in manifests ("apps/v1"; bare version for the core group)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def _prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def path(self, namespace: str, name: str = "") -> str:
        """The REST path of the collection (no name) or of one object, as ``Kube`` verbs take it."""
        base = f"{self._prefix}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{name}" if name else base

    def collection(self, namespace: str | None) -> str:
        """The objects of one namespace, or of the whole cluster (None), for a list or watch."""
        return self.path(namespace) if namespace else f"{self._prefix}/{self.plural}"


KINDS: Mapping[str, KindInfo] = MappingProxyType(
    {
        WorkloadKind.DEPLOYMENT: KindInfo(WorkloadKind.DEPLOYMENT, "apps", "v1", "deployments"),
        WorkloadKind.STATEFUL_SET: KindInfo(WorkloadKind.STATEFUL_SET, "apps", "v1", "statefulsets"),
        WorkloadKind.DAEMON_SET: KindInfo(WorkloadKind.DAEMON_SET, "apps", "v1", "daemonsets"),
    }
)
"""Supported kinds, keyed by the spec's ``WorkloadKind`` (a StrEnum, so plain strings look up too)."""


def kind_for(kind: str) -> KindInfo:
    """Look up a supported kind; ValueError (naming the supported ones) otherwise."""
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unsupported workload kind {kind!r}; supported: {', '.join(KINDS)}") from None


def workload_path(kind: str, namespace: str, name: str = "") -> str:
    """REST path of a workload (``/apis/apps/v1/namespaces/ns/deployments/name``)."""
    return kind_for(kind).path(namespace, name)


def _dig(obj: Mapping[str, Any], path: tuple[str, ...]) -> Mapping[str, Any] | None:
    node: Any = obj
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node if isinstance(node, Mapping) else None


def pod_template_of(kind: str, obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod template (``{metadata, spec}``) of a workload object, None if absent."""
    return _dig(obj, kind_for(kind).template_path)


def pod_spec_of(kind: str, obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod spec inside a workload's template, None if absent."""
    template = pod_template_of(kind, obj)
    return None if template is None else _dig(template, ("spec",))

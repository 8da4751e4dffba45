"""The I/O half of resolution: read the store object (and, for a label-selecting cluster store,
the namespace's labels) and hand them to the pure :func:`rotator.tenancy.resolve.resolve`."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from rotator.kube import Kube
from rotator.models import PolicyRef, RotationPolicySpec
from rotator.models.store import StoreRefKind
from rotator.tenancy.resolve import ResolvedStore, resolve, store_path


@dataclass(frozen=True)
class StoreResolver:
    kube: Kube
    #: The operator's allowlist of store addresses (``rotator run --allowed-store-address``);
    #: empty means any address an admin put into a store.
    allowed_addresses: Collection[str] = field(default_factory=frozenset)

    def __call__(self, policy: PolicyRef, spec: RotationPolicySpec) -> ResolvedStore:
        kind = StoreRefKind(spec.store_ref.kind)
        store = self.kube.get(store_path(kind, policy.namespace, spec.store_ref.name))
        labels: dict[str, str] = {}
        if kind is StoreRefKind.CLUSTER_ROTATION_STORE and store is not None:
            selector = ((store.get("spec") or {}).get("namespaces") or {}).get("selector")
            if selector:
                namespace = self.kube.get(f"/api/v1/namespaces/{policy.namespace}") or {}
                labels = dict((namespace.get("metadata") or {}).get("labels") or {})
        return resolve(policy.namespace, spec, store, labels, self.allowed_addresses)

"""From ``spec.storeRef`` + ``spec.path`` to a store location the namespace is allowed to use.

Pure (no I/O): the caller reads the store object and the namespace's labels. Every refusal is a
:class:`PermanentError` whose message names the field a human must change, because retrying never
fixes a reference to a store the namespace may not use.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from rotator.models import InvalidSpecError, PermanentError, StoreKind, keys, reasons
from rotator.models.paths import validate_kv_path
from rotator.models.spec import RotationPolicySpec
from rotator.models.store import (
    ClusterRotationStoreSpec,
    RotationStoreSpec,
    StoreRefKind,
    parse_store_spec,
)

StoreSpec = RotationStoreSpec | ClusterRotationStoreSpec


@dataclass(frozen=True)
class ResolvedStore:
    """A store as one policy may use it: the connection, the identity's namespace, the location."""

    ref_kind: StoreRefKind
    ref_name: str
    #: The store object's namespace (None for a cluster store).
    store_namespace: str | None
    #: The policy's namespace: tokens are minted for its service account.
    namespace: str
    spec: StoreSpec
    #: Full path (Vault) or secret id (AWS): the store's prefix for this namespace + spec.path.
    path: str

    @property
    def kind(self) -> StoreKind:
        return self.spec.kind

    @property
    def ref(self) -> str:
        return f"{self.ref_kind}/{self.ref_name}"

    @property
    def address(self) -> str:
        """Where requests go: the Vault address, or the AWS region and endpoint."""
        if self.spec.vault is not None:
            return self.spec.vault.address
        aws = self.spec.aws_secrets_manager
        assert aws is not None
        return f"aws:{aws.region}:{aws.endpoint or ''}"

    def location(self) -> dict[str, str]:
        """``status.rotation.storeLocation``: what a running rotation is pinned to."""
        if self.spec.vault is not None:
            return {
                "kind": "vault",
                "store": self.ref,
                "address": self.spec.vault.address,
                "mount": self.spec.vault.kv_mount,
                "path": self.path,
            }
        aws = self.spec.aws_secrets_manager
        assert aws is not None
        location = {"kind": "aws", "store": self.ref, "region": aws.region, "secretId": self.path}
        if aws.endpoint is not None:
            location["endpointUrl"] = aws.endpoint
        return location

    def credential_namespace(self, declared: str | None, field: str) -> str:
        """Where a static credential's Secret may live: the namespaced store's own namespace, or
        the namespace the cluster store's admin wrote down (required there). ``field`` is the
        store's Secret reference (``vault.auth.tokenSecretRef``), named in a refusal."""
        where = f"{self.ref} spec.{field}.namespace"
        if self.store_namespace is not None:
            if declared not in (None, self.store_namespace):
                raise PermanentError(
                    reasons.STORE_INVALID,
                    f"{where}: a namespaced store reads credentials only from its own namespace "
                    f"{self.store_namespace!r}, not {declared!r}",
                )
            return self.store_namespace
        if declared is None:
            raise PermanentError(
                reasons.STORE_INVALID,
                f"{where}: a cluster store must name the namespace of its credential Secret",
            )
        return declared


def store_path(kind: StoreRefKind, namespace: str, name: str) -> str:
    """The store object's REST path (the policy's namespace for a namespaced store)."""
    return f"{store_collection(kind, namespace)}/{name}"


def store_collection(kind: StoreRefKind, namespace: str | None) -> str:
    """Stores of a kind: RotationStores of one namespace or of the whole cluster (None); every
    ClusterRotationStore."""
    base = f"/apis/{keys.DOMAIN}/v1alpha1"
    if kind is StoreRefKind.CLUSTER_ROTATION_STORE:
        return f"{base}/clusterrotationstores"
    return f"{base}/namespaces/{namespace}/rotationstores" if namespace else f"{base}/rotationstores"


def resolve(
    namespace: str,
    spec: RotationPolicySpec,
    store_obj: Mapping[str, Any] | None,
    namespace_labels: Mapping[str, str],
    allowed_addresses: Collection[str] = (),
) -> ResolvedStore:
    """The store a policy in ``namespace`` references, checked against every tenancy rule."""
    ref = spec.store_ref
    kind = StoreRefKind(ref.kind)
    where = f"spec.storeRef: {kind} {ref.name}"
    if store_obj is None:
        scope = "" if kind is StoreRefKind.CLUSTER_ROTATION_STORE else f" in namespace {namespace}"
        raise PermanentError(reasons.STORE_NOT_FOUND, f"{where} not found{scope}")
    try:
        store = parse_store_spec(kind, store_obj.get("spec") or {})
    except InvalidSpecError as exc:
        raise PermanentError(reasons.STORE_INVALID, f"{where} is invalid: {exc}") from None
    if isinstance(store, ClusterRotationStoreSpec) and not store.namespaces.allows(
        namespace, namespace_labels
    ):
        raise PermanentError(reasons.STORE_NOT_ALLOWED, f"{where} does not allow namespace {namespace}")
    resolved = ResolvedStore(
        kind,
        ref.name,
        None if kind is StoreRefKind.CLUSTER_ROTATION_STORE else namespace,
        namespace,
        store,
        _full_path(store, namespace, spec.path),
    )
    if allowed_addresses and resolved.address not in allowed_addresses:
        raise PermanentError(
            reasons.STORE_NOT_ALLOWED,
            f"{where}: address {resolved.address} is not in the operator's --allowed-store-address list",
        )
    return resolved


def _full_path(store: StoreSpec, namespace: str, path: str) -> str:
    full = f"{store.prefix_for(namespace)}{path}"
    try:
        return validate_kv_path(full, "spec.path")
    except InvalidSpecError as exc:
        raise PermanentError(reasons.INVALID_SPEC, str(exc)) from None


def pin(resolved: ResolvedStore, pinned: Mapping[str, str] | None, rotation_id: str) -> ResolvedStore:
    """The store as a running rotation started with it: versions in status belong to that path.

    An edit of ``spec.path`` takes effect at the next rotation. A store whose kind, address or
    mount changed mid-rotation is refused (revert it to let the rotation finish); a pinned path
    outside this namespace's prefix (a hand-edited status) is refused too: status is not a way
    around the tenancy rules.
    """
    if not pinned:
        return resolved
    current = resolved.location()
    for key in ("kind", "store", "address", "mount", "region", "endpointUrl"):
        if pinned.get(key) != current.get(key):
            raise PermanentError(
                reasons.STORE_KIND_CHANGED,
                f"spec.storeRef: {key} changed from {pinned.get(key)!r} to {current.get(key)!r} during "
                f"rotation {rotation_id}; revert it to let that rotation finish "
                "(the change applies to the next one)",
            )
    path = pinned.get("path") or pinned.get("secretId") or resolved.path
    prefix = resolved.spec.prefix_for(resolved.namespace)
    try:
        validate_kv_path(path, "status.rotation.storeLocation.path")
    except InvalidSpecError as exc:
        raise PermanentError(reasons.INVALID_STATUS, str(exc)) from None
    if not path.startswith(prefix):
        raise PermanentError(
            reasons.INVALID_STATUS,
            f"status.rotation.storeLocation: path {path!r} is outside this namespace's prefix {prefix!r}",
        )
    return ResolvedStore(
        resolved.ref_kind,
        resolved.ref_name,
        resolved.store_namespace,
        resolved.namespace,
        resolved.spec,
        path,
    )

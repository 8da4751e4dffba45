"""The Kubernetes Secret a policy owns: written by sync, revoke, rollback and drift repair.

The Secret is identified as ours by the managed-by label and an owner reference to the policy;
anything else with the same name is a foreign object and is never overwritten.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from rotator.kube import API_VERSION, KIND, Kube
from rotator.models import PermanentError, PolicyRef, reasons
from rotator.models.keys import (
    DATA_HASH,
    DOMAIN,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    POLICY_LABEL,
    ROTATION_ID,
    SECRET_VERSION,
)


def encode(values: Mapping[str, SecretStr]) -> dict[str, str]:
    return {key: base64.b64encode(v.get_secret_value().encode()).decode() for key, v in values.items()}


def data_hash(data: Mapping[str, str]) -> str:
    """A digest of the encoded data: detects drift without keeping any value in status or logs."""
    return hashlib.sha256(json.dumps(dict(sorted(data.items()))).encode()).hexdigest()


def is_ours(secret: Mapping[str, Any], policy: PolicyRef) -> bool:
    meta = secret.get("metadata", {})
    labels = meta.get("labels") or {}
    return bool(labels.get(MANAGED_BY_LABEL) == MANAGED_BY and labels.get(POLICY_LABEL) == policy.name)


def in_sync(secret: Mapping[str, Any] | None, data: Mapping[str, str], version: str) -> bool:
    if secret is None:
        return False
    annotations = secret.get("metadata", {}).get("annotations") or {}
    return bool(
        (secret.get("data") or {}) == dict(data)
        and annotations.get(DATA_HASH) == data_hash(data)
        and annotations.get(SECRET_VERSION) == version
    )


def current_secret_version(secret: Mapping[str, Any] | None) -> str | None:
    if secret is None:
        return None
    version = (secret.get("metadata", {}).get("annotations") or {}).get(SECRET_VERSION)
    return str(version) if version is not None else None


def held_value(
    secret: Mapping[str, Any] | None, policy: PolicyRef, key: str, version: str
) -> SecretStr | None:
    """The value the Secret holds under ``key`` for store version ``version``, when rotator wrote
    it and nobody changed the data since (its data matches the hash annotation written with it):
    then it *is* that store version's value, and reading it back from the store is not needed.
    None otherwise (read the store)."""
    if secret is None or not is_ours(secret, policy):
        return None
    data: Mapping[str, str] = secret.get("data") or {}
    annotations = secret.get("metadata", {}).get("annotations") or {}
    if key not in data or annotations.get(SECRET_VERSION) != version:
        return None
    if annotations.get(DATA_HASH) != data_hash(data):
        return None
    try:
        return SecretStr(base64.b64decode(data[key], validate=True).decode())
    except ValueError:
        return None


def settled(
    secret: Mapping[str, Any] | None,
    policy: PolicyRef,
    key: str,
    version: str,
    *,
    delete_with_policy: bool,
    keys: frozenset[str] | None = None,
) -> bool:
    """The Secret is exactly what drift repair would write for ``version`` (data keys ``keys``,
    by default only ``key``): nothing to repair, so an idle reconcile need not read the store
    (the watch on managed Secrets says when to look)."""
    if held_value(secret, policy, key, version) is None:
        return False
    assert secret is not None
    ours = [_owner_reference(policy)] if delete_with_policy else []
    expected = keys if keys is not None else frozenset({key})
    return set(secret.get("data") or {}) == expected and _our_owner_references(secret, policy) == ours


def ensure_secret_is_ours(kube: Kube, policy: PolicyRef, name: str) -> dict[str, Any] | None:
    """The Secret if rotator owns it, None if absent; a foreign one is a permanent refusal."""
    existing = kube.get_secret(policy.namespace, name)
    if existing is not None and not is_ours(existing, policy):
        raise PermanentError(
            reasons.SECRET_NOT_OWNED,
            f"Secret {policy.namespace}/{name} exists and is not managed by rotator for this policy "
            f"(label {MANAGED_BY_LABEL}={MANAGED_BY}, {POLICY_LABEL}={policy.name}); "
            "delete it or label it to let rotator take it over",
        )
    return existing


def authorize_secret_write(kube: Kube, policy: PolicyRef, name: str) -> None:
    """Ask the API server, without changing anything, whether :func:`write_secret` will be
    allowed: a server-side dry run of the same verb (create when absent, update otherwise) goes
    through authentication, RBAC and admission and stores nothing. A missing grant is a
    KubeForbidden *before* a rotation writes to its store, never a store version promoted that
    the Secret can not follow. A foreign Secret is refused as :func:`write_secret` refuses it."""
    existing = ensure_secret_is_ours(kube, policy, name)
    if existing is None:
        metadata = {"name": name, "namespace": policy.namespace}
        kube.create_secret(
            policy.namespace, {"apiVersion": "v1", "kind": "Secret", "metadata": metadata}, dry_run=True
        )
    else:
        kube.replace_secret(policy.namespace, name, existing, dry_run=True)


def write_secret(
    kube: Kube,
    policy: PolicyRef,
    name: str,
    values: Mapping[str, SecretStr],
    version: str,
    rotation_id: str,
    *,
    delete_with_policy: bool = False,
) -> bool:
    """Make the Secret hold exactly `values`; returns True when something was written.

    ``delete_with_policy`` (``secret.deletionPolicy: Delete``) makes the policy the Secret's
    controller owner, so the garbage collector removes it with the policy; otherwise (Retain) the
    Secret has no owner reference and outlives the policy: consumers never lose a credential
    because a policy was deleted.

    Refuses a same-named Secret that rotator does not own. A concurrent writer surfaces as
    KubeConflict (the PUT carries the resourceVersion read), and the engine retries the step.
    """
    data = encode(values)
    existing = ensure_secret_is_ours(kube, policy, name)
    ours = [_owner_reference(policy)] if delete_with_policy else []
    if in_sync(existing, data, version) and _our_owner_references(existing, policy) == ours:
        return False
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": policy.namespace,
        "labels": {MANAGED_BY_LABEL: MANAGED_BY, POLICY_LABEL: policy.name},
        "annotations": {ROTATION_ID: rotation_id, SECRET_VERSION: version, DATA_HASH: data_hash(data)},
    }
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata,
        "data": data,
    }
    if ours:
        metadata["ownerReferences"] = ours
    if existing is None:
        kube.create_secret(policy.namespace, body)
    else:
        old_meta = existing.get("metadata", {})
        metadata["resourceVersion"] = old_meta.get("resourceVersion")
        metadata["labels"] = {**(old_meta.get("labels") or {}), **metadata["labels"]}
        foreign_annotations = {
            k: v for k, v in (old_meta.get("annotations") or {}).items() if not k.startswith(f"{DOMAIN}/")
        }
        metadata["annotations"] = {**foreign_annotations, **metadata["annotations"]}
        foreign_owners = [r for r in old_meta.get("ownerReferences") or [] if r.get("uid") != policy.uid]
        metadata["ownerReferences"] = foreign_owners + ours
        kube.replace_secret(policy.namespace, name, body)
    return True


def _owner_reference(policy: PolicyRef) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": policy.name,
        "uid": policy.uid,
        "controller": True,
        "blockOwnerDeletion": False,
    }


def _our_owner_references(secret: Mapping[str, Any] | None, policy: PolicyRef) -> list[Any]:
    refs = ((secret or {}).get("metadata") or {}).get("ownerReferences") or []
    return [r for r in refs if r.get("uid") == policy.uid]

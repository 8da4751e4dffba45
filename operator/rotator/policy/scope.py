"""What a rotation is bound to: the store location and Secret it started with, and the hash of
the credential spec that decides whether a new credential is due (pure, no I/O)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from rotator.models import RotationPolicySpec


class StoreKindChanged(ValueError):
    """spec.store switched between Vault and AWS while a rotation was running."""


def credential_spec_hash(spec: RotationPolicySpec) -> str:
    """Changing what the credential is (length, alphabet) or where it lives calls for a new one;
    schedule edits do not. A moved store path gets its first credential this way."""
    raw = {
        "credential": spec.credential.model_dump(mode="json", by_alias=True, exclude_none=True),
        "store": store_location(spec),
    }
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:16]


def store_location(spec: RotationPolicySpec) -> dict[str, str]:
    """Where the spec's store keeps the credential (status.rotation.storeLocation)."""
    aws = spec.store.aws_secrets_manager
    if aws is not None:
        location = {"kind": "aws", "region": aws.region, "secretId": aws.secret_id}
        if aws.endpoint_url is not None:
            location["endpointUrl"] = aws.endpoint_url
        return location
    vault = spec.store.vault
    assert vault is not None, "the models guarantee exactly one store"
    return {"kind": "vault", "address": vault.address, "mount": vault.mount, "path": vault.path}


def pin_to_rotation(spec: RotationPolicySpec, rotation: Mapping[str, Any]) -> RotationPolicySpec:
    """The spec with the store location and Secret name the rotation started with.

    Versions in status.rotation belong to that path (Vault) or secret (AWS); an edit of
    spec.store or spec.secret.name mid-rotation must not make revoke destroy a version of
    another path. The edit takes effect at the next rotation. Credentials (auth) are not pinned.
    """
    location = rotation.get("storeLocation") or {}
    secret_name = rotation.get("secretName")
    if not location:
        return spec
    vault = spec.store.vault
    aws = spec.store.aws_secrets_manager
    pinned = spec
    if vault is not None and location.get("kind", "vault") == "vault":
        pinned_vault = vault.model_copy(
            update={k: location[k] for k in ("address", "mount", "path") if location.get(k)}
        )
        pinned = spec.model_copy(update={"store": spec.store.model_copy(update={"vault": pinned_vault})})
    elif aws is not None and location.get("kind") == "aws":
        update: dict[str, Any] = {"endpoint_url": location.get("endpointUrl") or None}
        if location.get("region"):
            update["region"] = location["region"]
        if location.get("secretId"):
            update["secret_id"] = location["secretId"]
        pinned_aws = aws.model_copy(update=update)
        pinned = spec.model_copy(
            update={"store": spec.store.model_copy(update={"aws_secrets_manager": pinned_aws})}
        )
    else:
        # The store kind changed mid-rotation: the versions in status belong to the other store.
        raise StoreKindChanged(
            f"spec.store: changed from {location.get('kind')} during rotation {rotation.get('id')}; "
            "revert it to let that rotation finish (the change applies to the next one)"
        )
    if secret_name:
        pinned = pinned.model_copy(update={"secret": spec.secret.model_copy(update={"name": secret_name})})
    return pinned

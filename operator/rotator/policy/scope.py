"""What a rotation is bound to, and whether the credential spec calls for a new credential
(pure, no I/O). The store location itself is resolved and pinned by ``rotator.tenancy``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from rotator.models import RotationPolicySpec


def credential_spec_hash(spec: RotationPolicySpec, location: Mapping[str, str]) -> str:
    """Changing what the credential is (length, alphabet) or where it lives calls for a new one;
    schedule edits do not. A moved store path gets its first credential this way. The store
    object's name is not part of it: renaming a store is not a new credential."""
    where = {k: v for k, v in location.items() if k != "store"}
    raw = {
        "credential": spec.credential.model_dump(mode="json", by_alias=True, exclude_none=True),
        "store": where,
    }
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:16]


def pin_secret(spec: RotationPolicySpec, secret_name: str | None) -> RotationPolicySpec:
    """The spec with the Secret name the rotation started with: a rename mid-rotation must not
    leave the old Secret half rotated; it takes effect at the next rotation."""
    if not secret_name or secret_name == spec.secret.name:
        return spec
    return spec.model_copy(update={"secret": spec.secret.model_copy(update={"name": secret_name})})

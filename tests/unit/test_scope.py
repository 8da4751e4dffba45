"""A rotation keeps its Secret where it started, and the credential hash says when a new one is
due. (Where the credential lives is resolved and pinned by rotator.tenancy: test_tenancy_resolve.)"""

from __future__ import annotations

from typing import Any

from rotator.models import RotationPolicySpec, parse_spec
from rotator.policy.scope import credential_spec_hash, pin_secret

VAULT = {
    "kind": "vault",
    "store": "RotationStore/vault",
    "address": "http://vault:8200",
    "mount": "secret",
    "path": "shop/orders",
}
AWS = {"kind": "aws", "store": "RotationStore/aws", "region": "eu-west-1", "secretId": "shop/orders"}


def spec(secret: str = "orders", **changes: Any) -> RotationPolicySpec:
    raw: dict[str, Any] = {
        "secret": {"name": secret, "key": "password"},
        "credential": {"password": {}},
        "storeRef": {"name": "vault"},
        "path": "orders",
    }
    raw.update(changes)
    return parse_spec(raw)


def test_secret_name_is_pinned_to_the_rotation() -> None:
    edited = spec(secret="renamed")
    pinned = pin_secret(edited, "orders")
    assert pinned.secret.name == "orders"
    assert pinned.secret.key == "password"
    # Only the name: everything else is the edited spec.
    assert pinned.model_copy(update={"secret": edited.secret}) == edited
    assert edited.secret.name == "renamed"  # frozen: the edited spec is untouched


def test_no_pin_or_the_same_name_is_the_spec_itself() -> None:
    edited = spec(secret="renamed")
    assert pin_secret(edited, None) is edited
    assert pin_secret(edited, "") is edited
    assert pin_secret(edited, "renamed") is edited


def test_credential_hash_changes_with_credential_or_location_but_not_schedule() -> None:
    base = credential_spec_hash(spec(), VAULT)
    assert credential_spec_hash(spec(), VAULT) == base
    assert len(base) == 16
    assert credential_spec_hash(spec(), VAULT | {"path": "shop/other"}) != base
    assert credential_spec_hash(spec(), VAULT | {"address": "http://vault-2:8200"}) != base
    assert credential_spec_hash(spec(), VAULT | {"mount": "kv"}) != base
    assert credential_spec_hash(spec(), AWS) != base
    assert credential_spec_hash(spec(credential={"password": {"length": 40}}), VAULT) != base
    assert credential_spec_hash(spec(credential={"password": {"alphabet": "hex"}}), VAULT) != base
    # Not what the credential is, nor where it lives:
    assert credential_spec_hash(spec(secret="renamed"), VAULT) == base
    assert credential_spec_hash(spec(schedule={"interval": "24h"}), VAULT) == base
    assert credential_spec_hash(spec(adopt=True, suspend=True), VAULT) == base


def test_renaming_the_store_object_is_not_a_new_credential() -> None:
    """The same connection and path under another store name hashes the same; the policy's own
    storeRef does not enter the hash either (only the resolved location does)."""
    base = credential_spec_hash(spec(), VAULT)
    assert credential_spec_hash(spec(), VAULT | {"store": "ClusterRotationStore/shared"}) == base
    assert credential_spec_hash(spec(storeRef={"name": "other"}), VAULT) == base
    assert credential_spec_hash(spec(), AWS | {"store": "x"}) == credential_spec_hash(spec(), AWS)
    assert credential_spec_hash(
        spec(), AWS | {"endpointUrl": "http://127.0.0.1:5000"}
    ) != credential_spec_hash(spec(), AWS)

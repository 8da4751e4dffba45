"""A rotation keeps writing where it started: spec edits of the store or Secret apply next time."""

from __future__ import annotations

from typing import Any

import pytest

from rotator.models import parse_spec
from rotator.policy.scope import StoreKindChanged, credential_spec_hash, pin_to_rotation, store_location


def vault_spec(path: str = "shop/orders", secret: str = "orders") -> Any:
    return parse_spec(
        {
            "secret": {"name": secret},
            "credential": {"password": {}},
            "store": {
                "vault": {
                    "address": "http://vault:8200",
                    "path": path,
                    "auth": {"tokenSecretRef": {"name": "t"}},
                }
            },
        }
    )


def aws_spec(secret_id: str = "shop/orders") -> Any:
    return parse_spec(
        {
            "secret": {"name": "orders"},
            "credential": {"password": {}},
            "store": {
                "awsSecretsManager": {"region": "eu-west-1", "secretId": secret_id, "auth": {"irsa": {}}}
            },
        }
    )


def test_vault_path_and_secret_name_are_pinned_to_the_rotation() -> None:
    started = vault_spec()
    rotation = {"id": "r1", "storeLocation": store_location(started), "secretName": "orders"}
    edited = vault_spec(path="shop/moved", secret="renamed")
    pinned = pin_to_rotation(edited, rotation)
    assert pinned.store.vault is not None
    assert pinned.store.vault.path == "shop/orders"
    assert pinned.secret.name == "orders"
    assert pin_to_rotation(edited, {"id": "old-status-without-pins"}) == edited


def test_aws_secret_id_is_pinned_to_the_rotation() -> None:
    rotation = {"id": "r1", "storeLocation": store_location(aws_spec()), "secretName": "orders"}
    pinned = pin_to_rotation(aws_spec(secret_id="shop/moved"), rotation)
    assert pinned.store.aws_secrets_manager is not None
    assert pinned.store.aws_secrets_manager.secret_id == "shop/orders"


def test_store_kind_changed_mid_rotation_is_refused_naming_the_field() -> None:
    rotation = {"id": "r1", "storeLocation": store_location(vault_spec())}
    with pytest.raises(StoreKindChanged, match=r"spec\.store: changed from vault during rotation r1"):
        pin_to_rotation(aws_spec(), rotation)


def test_credential_hash_changes_with_credential_or_location_but_not_schedule() -> None:
    base = credential_spec_hash(vault_spec())
    assert credential_spec_hash(vault_spec(path="other")) != base
    assert credential_spec_hash(vault_spec(secret="renamed")) == base
    longer = parse_spec(
        {
            **vault_spec().model_dump(by_alias=True, exclude_none=True),
            "credential": {"password": {"length": 40}},
        }
    )
    assert credential_spec_hash(longer) != base

"""Vault KV v2 store specifics beyond the shared contract: on-disk layout, error mapping, retries.

And the fake's fault injection, which the contract suite only uses as a switch.
"""

from __future__ import annotations

import uuid
from typing import Any

import hvac
import pytest
from pydantic import SecretStr

from rotator.models.keys import SECRET_VERSION as VERSION
from rotator.sandbox.openbao import OpenBaoServer
from rotator.sandbox.processes import free_port
from rotator.stores.base import (
    CURRENT_VERSION,
    FAILED_VERSIONS,
    MANAGED_BY,
    MAX_FAILED_VERSIONS,
    OWNER,
    PREVIOUS_VERSION,
    ROTATION_ID,
    Store,
)
from rotator.stores.errors import (
    StoreError,
    StoreMountError,
    StoreOwnershipError,
    StoreRefused,
    StoreUnavailable,
)
from rotator.stores.fake import FakeStore
from rotator.stores.vault.client import vault_client
from rotator.stores.vault.kv2 import VaultKV2Store

MOUNT = "secret"


def make_store(
    server: OpenBaoServer, *, token: str | None = None, address: str | None = None
) -> tuple[VaultKV2Store, list[tuple[str, str]], list[float]]:
    requests: list[tuple[str, str]] = []
    sleeps: list[float] = []
    client = vault_client(address or server.address, token or server.root_token, 2.0)
    store = VaultKV2Store(
        client,
        MOUNT,
        f"test/{uuid.uuid4().hex}",
        on_request=lambda op, res: requests.append((op, res)),
        sleep=sleeps.append,
    )
    return store, requests, sleeps


def _alive(admin: hvac.Client, path: str) -> dict[int, dict[str, str]]:
    kv = admin.secrets.kv.v2
    versions = kv.read_secret_metadata(path=path, mount_point=MOUNT)["data"]["versions"]
    return {
        int(n): kv.read_secret_version(
            path=path, version=int(n), mount_point=MOUNT, raise_on_deleted_version=True
        )["data"]["data"]
        for n, info in versions.items()
        if not info["destroyed"] and not info["deletion_time"]
    }


def test_layout_published_path_staging_path_and_custom_metadata(openbao: OpenBaoServer) -> None:
    store, _, _ = make_store(openbao)
    admin = hvac.Client(url=openbao.address, token=openbao.root_token, timeout=5)
    kv = admin.secrets.kv.v2
    store.ensure_owned("shop/orders-db", adopt=False)
    # The claim: version 1 of the staging path; nothing published, nothing for readers of latest.
    assert _alive(admin, store.staging_path) == {1: {MANAGED_BY: "rotator", OWNER: "shop/orders-db"}}
    assert kv.read_secret_metadata(path=store.path, mount_point=MOUNT)["data"]["versions"] == {}

    first = store.write_pending(SecretStr("v1"), "rot-1")
    assert first.version == "1", "the number promote will publish it as"
    assert _alive(admin, store.staging_path)[2] == {"value": "v1", ROTATION_ID: "rot-1", VERSION: "1"}
    assert kv.read_secret_metadata(path=store.path, mount_point=MOUNT)["data"]["versions"] == {}
    store.promote(first.version, None)
    second = store.write_pending(SecretStr("v2"), "rot-2")
    store.promote(second.version, first.version)

    assert _alive(admin, store.path) == {
        1: {"value": "v1", ROTATION_ID: "rot-1", VERSION: "1"},
        2: {"value": "v2", ROTATION_ID: "rot-2", VERSION: "2"},
    }
    assert list(_alive(admin, store.staging_path)) == [1], "promoted values leave the staging path"
    latest = kv.read_secret_version(path=store.path, mount_point=MOUNT, raise_on_deleted_version=True)
    assert latest["data"]["data"]["value"] == "v2"
    custom = kv.read_secret_metadata(path=store.path, mount_point=MOUNT)["data"]["custom_metadata"]
    assert custom == {
        MANAGED_BY: "rotator",
        OWNER: "shop/orders-db",
        CURRENT_VERSION: second.version,
        PREVIOUS_VERSION: first.version,
    }


def test_rollback_publishes_the_old_value_again_then_destroys_the_failed_one(openbao: OpenBaoServer) -> None:
    store, _, _ = make_store(openbao)
    admin = hvac.Client(url=openbao.address, token=openbao.root_token, timeout=5)
    store.ensure_owned("o/p", adopt=False)
    old = store.write_pending(SecretStr("old"), "rot-old")
    store.promote(old.version, None)
    new = store.write_pending(SecretStr("new"), "rot-new")
    store.promote(new.version, old.version)
    store.mark_failed(new.version, old.version)
    store.mark_failed(new.version, old.version)  # idempotent: no second copy
    assert _alive(admin, store.path) == {
        1: {"value": "old", ROTATION_ID: "rot-old", VERSION: "1"},
        3: {"value": "old", ROTATION_ID: "rot-old", VERSION: "1"},
    }
    assert store.read_value("1").get_secret_value() == "old"
    # Revoking the restored id later destroys the original and every copy.
    third = store.write_pending(SecretStr("third"), "rot-3")
    assert third.version == "4"
    store.promote(third.version, old.version)
    store.revoke(old.version)
    assert _alive(admin, store.path) == {4: {"value": "third", ROTATION_ID: "rot-3", VERSION: "4"}}


def test_foreign_write_taking_the_pending_number_fails_promote_and_is_never_destroyed(
    openbao: OpenBaoServer,
) -> None:
    store, _, _ = make_store(openbao)
    admin = hvac.Client(url=openbao.address, token=openbao.root_token, timeout=5)
    store.ensure_owned("o/p", adopt=False)
    old = store.write_pending(SecretStr("old"), "rot-old")
    store.promote(old.version, None)
    new = store.write_pending(SecretStr("new"), "rot-new")
    admin.secrets.kv.v2.create_or_update_secret(
        path=store.path, secret={"value": "theirs"}, mount_point=MOUNT
    )
    with pytest.raises(StoreRefused, match="written by someone else since"):
        store.promote(new.version, old.version)
    store.mark_failed(new.version, old.version)  # the engine's rollback
    alive = _alive(admin, store.path)
    assert alive[2] == {"value": "theirs"}, "the foreign version that took number 2 is untouched"
    assert alive[3] == {"value": "old", ROTATION_ID: "rot-old", VERSION: "1"}, "old is latest again"
    assert list(_alive(admin, store.staging_path)) == [1], "our pending value is destroyed"


def test_failed_versions_list_is_bounded(openbao: OpenBaoServer) -> None:
    store, _, _ = make_store(openbao)
    store.ensure_owned("o/p", adopt=False)
    base = store.write_pending(SecretStr("base"), "base")
    store.promote(base.version, None)
    for n in range(MAX_FAILED_VERSIONS + 2):
        bad = store.write_pending(SecretStr(f"bad-{n}"), f"bad-{n}")
        store.promote(bad.version, base.version)
        store.mark_failed(bad.version, base.version)
    admin = hvac.Client(url=openbao.address, token=openbao.root_token, timeout=5)
    custom = admin.secrets.kv.v2.read_secret_metadata(path=store.path, mount_point=MOUNT)["data"][
        "custom_metadata"
    ]
    failed = custom[FAILED_VERSIONS].split(",")
    assert len(failed) == MAX_FAILED_VERSIONS
    assert failed[-1] == bad.version
    assert custom[CURRENT_VERSION] == base.version


def test_foreign_value_with_several_keys_is_not_adopted(openbao: OpenBaoServer) -> None:
    store, _, _ = make_store(openbao)
    admin = hvac.Client(url=openbao.address, token=openbao.root_token, timeout=5)
    admin.secrets.kv.v2.create_or_update_secret(
        path=store.path, secret={"username": "u", "password": "p"}, mount_point=MOUNT
    )
    store.ensure_owned("o/p", adopt=True)
    assert store.current() is None
    with pytest.raises(StoreError, match="no 'value' key"):
        store.read_value("1")


def test_connection_refused_is_retried_briefly_then_unavailable(openbao: OpenBaoServer) -> None:
    store, requests, sleeps = make_store(openbao, address=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(StoreUnavailable, match="ConnectionError"):
        store.current()
    assert len(sleeps) == 2, "3 attempts"
    assert all(0.2 <= s <= 1.0 for s in sleeps)
    assert requests == [("read_metadata", "error")], "one logical request, counted once"


def test_permission_denied_is_permanent_and_not_retried(openbao: OpenBaoServer) -> None:
    store, requests, sleeps = make_store(openbao, token="not-a-token")
    with pytest.raises(StoreError, match="denied") as caught:
        store.ensure_owned("o/p", adopt=False)
    assert not isinstance(caught.value, StoreUnavailable)
    assert sleeps == []
    assert requests == [("read_metadata", "error")]


def test_vault_store_satisfies_the_protocol(openbao: OpenBaoServer) -> None:
    store, _, _ = make_store(openbao)
    assert isinstance(store, Store)
    assert isinstance(FakeStore(), Store)


def test_fake_fail_next_injects_n_unavailable_calls() -> None:
    requests: list[tuple[str, str]] = []
    store = FakeStore(on_request=lambda op, res: requests.append((op, res)))
    store.fail_next(2)
    for _ in range(2):
        with pytest.raises(StoreUnavailable):
            store.current()
    assert store.current() is None
    assert requests == [("current", "error"), ("current", "error"), ("current", "ok")]


@pytest.mark.parametrize(
    ("mount", "path"),
    [
        ("secret", "../sys/policy/x"),
        ("secret", "a/../../auth/token/create"),
        ("secret", "./x"),
        ("secret", "a//b"),
        ("secret", "/a"),
        ("sys", "policy/x"),
        ("auth/token", "create"),
        ("identity", "x"),
        ("cubbyhole", "x"),
        ("secret/../sys", "x"),
    ],
)
def test_store_refuses_a_path_or_mount_that_leaves_its_kv_engine(
    openbao: OpenBaoServer, mount: str, path: str
) -> None:
    client = vault_client(openbao.address, openbao.root_token, 2.0)
    # A bad mount is the store's kvMount (a StoreInvalid condition); a bad path, a refusal.
    expected = StoreRefused if mount == "secret" else StoreMountError
    with pytest.raises(expected) as caught:
        VaultKV2Store(client, mount, path)
    assert repr(mount) in str(caught.value)
    assert repr(path) in str(caught.value)
    if expected is StoreMountError:
        assert "spec.vault.kvMount" in str(caught.value)


@pytest.fixture
def admin(openbao: OpenBaoServer) -> hvac.Client:
    return hvac.Client(url=openbao.address, token=openbao.root_token, timeout=5)


def _mounted(admin: hvac.Client, engine: str, **options: str) -> str:
    mount = f"{engine}-{uuid.uuid4().hex[:8]}"
    admin.sys.enable_secrets_engine(engine, path=mount, options=options or None)
    return mount


def _keys_under(admin: hvac.Client, mount: str) -> list[str]:
    try:
        return list(admin.adapter.list(f"/v1/{mount}")["data"]["keys"])
    except hvac.exceptions.InvalidPath:
        return []


def test_kv_v1_mount_is_refused_before_anything_is_written(
    openbao: OpenBaoServer, admin: hvac.Client
) -> None:
    mount = _mounted(admin, "kv", version="1")
    store = VaultKV2Store(vault_client(openbao.address, openbao.root_token, 2.0), mount, "shop/orders")
    with pytest.raises(StoreMountError, match=f"mount '{mount}' is not a KV version 2 engine"):
        store.ensure_owned("shop/orders", adopt=False)
    with pytest.raises(StoreMountError, match="version 1"):
        store.write_pending(SecretStr("TOPSECRET-never-written"), "rot-1")
    assert _keys_under(admin, mount) == [], "nothing was written to the KV v1 mount"


def test_non_kv_and_missing_mounts_are_refused(openbao: OpenBaoServer, admin: hvac.Client) -> None:
    client = vault_client(openbao.address, openbao.root_token, 2.0)
    transit = _mounted(admin, "transit")
    with pytest.raises(StoreMountError, match="type 'transit'"):
        VaultKV2Store(client, transit, "x").ensure_owned("o/p", adopt=False)
    with pytest.raises(StoreMountError, match="no such mount"):
        VaultKV2Store(client, f"missing-{uuid.uuid4().hex[:8]}", "x").ensure_owned("o/p", adopt=False)
    with pytest.raises(StoreMountError, match="a path inside mount 'secret/'"):
        VaultKV2Store(client, "secret/sub", "x").ensure_owned("o/p", adopt=False)


def test_mount_check_works_without_sudo_for_a_token_scoped_to_the_path(
    openbao: OpenBaoServer, admin: hvac.Client
) -> None:
    path = f"scoped/{uuid.uuid4().hex}"
    policy = "\n".join(
        f'path "{MOUNT}/{kind}/{path}*" {{ capabilities = ["create", "read", "update", "patch"] }}'
        for kind in ("data", "metadata", "destroy")
    )
    name = f"kv-only-{uuid.uuid4().hex[:8]}"
    admin.sys.create_or_update_policy(name, policy)
    token = admin.auth.token.create(policies=[name], ttl="10m")["auth"]["client_token"]
    store = VaultKV2Store(vault_client(openbao.address, token, 2.0), MOUNT, path)
    assert store.ensure_owned("o/p", adopt=False) is False


def test_a_claim_read_back_rather_than_won_checks_the_tags_after_merging(
    openbao: OpenBaoServer, admin: hvac.Client
) -> None:
    """Our claim record found on the staging path (its write's answer was lost) proves nothing
    about who tags the published path after us: ensure_owned reads the tags back and refuses
    when another owner's replaced ours (metadata has no check-and-set)."""
    store, requests, _ = make_store(openbao)
    kv = admin.secrets.kv.v2
    kv.create_or_update_secret(
        path=f"{store.path}.rotator-pending", secret={MANAGED_BY: "rotator", OWNER: "o/p"}, mount_point=MOUNT
    )
    api = store._api
    patching, writing = api.patch_metadata, api.write_metadata

    def intrude() -> None:
        custom = {MANAGED_BY: "rotator", OWNER: "intruder/x"}
        kv.update_metadata(path=store.path, custom_metadata=custom, mount_point=MOUNT)

    def patched(*args: Any) -> None:
        patching(*args)  # the path has no metadata yet: InvalidPath, then the plain write
        intrude()

    def written(*args: Any) -> None:
        writing(*args)
        intrude()

    api.patch_metadata = patched  # type: ignore[method-assign]
    api.write_metadata = written  # type: ignore[method-assign]
    with pytest.raises(StoreOwnershipError, match="intruder/x"):
        store.ensure_owned("o/p", adopt=False)
    assert [op for op, _ in requests].count("read_metadata") == 3, "the path, the staging path, the check"

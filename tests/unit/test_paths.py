"""KV paths and mounts: what a policy may name, and the traversal attacks of issue 7."""

from __future__ import annotations

import pytest

from rotator.models.errors import InvalidSpecError
from rotator.models.paths import MAX_MOUNT_LENGTH, MAX_PATH_LENGTH, validate_kv_mount, validate_kv_path

GOOD_PATHS = [
    "orders-db",
    "shop/orders-db",
    "team_a/app.v2/db-password",
    "a",
    "x" * MAX_PATH_LENGTH,
    "..a/b..",  # dots inside a segment are a name, not a traversal
]

BAD_PATHS = [
    ("", "must not be empty"),
    (".", "'.' or '..' segments"),
    ("..", "'.' or '..' segments"),
    ("../sys/policy/x", "'.' or '..' segments"),
    ("a/../../auth/token/create", "'.' or '..' segments"),
    ("./x", "'.' or '..' segments"),
    ("x/.", "'.' or '..' segments"),
    ("a//b", "empty segments"),
    ("/a", "start or end with '/'"),
    ("a/", "start or end with '/'"),
    ("/", "start or end with '/'"),
    ("a b", "only letters, digits"),
    ("a%2e%2e/b", "only letters, digits"),
    ("a\\..\\b", "only letters, digits"),
    ("a?x=1", "only letters, digits"),
    ("a#b", "only letters, digits"),
    ("ünï", "only letters, digits"),
    ("a\nb", "only letters, digits"),
    ("x" * (MAX_PATH_LENGTH + 1), f"at most {MAX_PATH_LENGTH}"),
    ("db.rotator-pending", "reserved by rotator"),
    ("db.rotator-pending/x", "reserved by rotator"),
]

GOOD_MOUNTS = ["secret", "kv", "team-a/kv", "kv_v2", "secrets.prod", "system", "authz"]

BAD_MOUNTS = [
    ("", "must not be empty"),
    ("sys", "reserved by Vault"),
    ("SYS", "reserved by Vault"),
    ("sys/policy", "reserved by Vault"),
    ("auth", "reserved by Vault"),
    ("auth/token", "reserved by Vault"),
    ("identity", "reserved by Vault"),
    ("cubbyhole", "reserved by Vault"),
    ("token", "reserved by Vault"),
    ("secret/../sys", "'.' or '..' segments"),
    ("..", "'.' or '..' segments"),
    ("./secret", "'.' or '..' segments"),
    ("/secret", "start or end with '/'"),
    ("secret/", "start or end with '/'"),
    ("se//cret", "empty segments"),
    ("secret?x", "only letters, digits"),
    ("m" * (MAX_MOUNT_LENGTH + 1), f"at most {MAX_MOUNT_LENGTH}"),
]


@pytest.mark.parametrize("path", GOOD_PATHS)
def test_valid_paths_are_returned_unchanged(path: str) -> None:
    assert validate_kv_path(path) == path


@pytest.mark.parametrize(("path", "message"), BAD_PATHS)
def test_invalid_paths_are_refused_naming_the_field(path: str, message: str) -> None:
    with pytest.raises(InvalidSpecError) as caught:
        validate_kv_path(path, "spec.path")
    assert caught.value.field == "spec.path"
    assert message in caught.value.message
    assert str(caught.value).startswith("spec.path: ")


@pytest.mark.parametrize("mount", GOOD_MOUNTS)
def test_valid_mounts_are_returned_unchanged(mount: str) -> None:
    assert validate_kv_mount(mount) == mount


@pytest.mark.parametrize(("mount", "message"), BAD_MOUNTS)
def test_invalid_mounts_are_refused_naming_the_field(mount: str, message: str) -> None:
    with pytest.raises(InvalidSpecError) as caught:
        validate_kv_mount(mount, "spec.vault.kvMount")
    assert caught.value.field == "spec.vault.kvMount"
    assert message in caught.value.message


@pytest.mark.parametrize("value", [None, 7, ["a"]])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(InvalidSpecError, match="must be a string"):
        validate_kv_path(value)
    with pytest.raises(InvalidSpecError, match="must be a string"):
        validate_kv_mount(value)


def test_the_field_name_is_the_callers() -> None:
    with pytest.raises(InvalidSpecError) as caught:
        validate_kv_path("../x", "status.rotation.storeLocation.path")
    assert caught.value.field == "status.rotation.storeLocation.path"

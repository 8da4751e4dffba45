"""Vault KV paths and mounts a policy may name: strict, so no request leaves the path it names.

Why strict (issue 7): hvac, requests and Vault itself normalise ``.`` and ``..`` segments, so a
path ``../sys/policy/x`` under mount ``secret`` reached ``sys/policy/x``; an empty segment
(``a//b``) or a leading slash shifts the request the same way. A path is therefore one or more
segments of ``[A-Za-z0-9._-]``, none empty, ``.`` or ``..``, no leading or trailing slash, and
bounded in length. A mount obeys the same rules and may not be (or be under) one of Vault's
reserved mounts, whose endpoints are not secrets: ``sys``, ``auth``, ``identity``,
``cubbyhole`` and ``token``.

A path segment may not end with :data:`STAGING_SUFFIX`: that name is where the Vault store keeps
a pending credential beside the published one (``rotator.stores.vault.kv2``), so no policy may
name it as its own path.

Pure and at the bottom layer: the spec models (and the Vault store, as defence in depth) call
these with the CRD field name to report, so the error reads like the 422 kube-apiserver gives.
"""

from __future__ import annotations

import re
from typing import Final

from rotator.models.errors import InvalidSpecError

MAX_PATH_LENGTH: Final = 512
"""Characters in a KV path: far beyond real names, small enough that a path plus the store's
prefix and staging suffix stays a short URL (proxies commonly refuse request lines over 8 KiB)."""

MAX_MOUNT_LENGTH: Final = 128
"""Characters in a mount path (Vault mount paths are short, e.g. ``secret`` or ``team/kv``)."""

RESERVED_MOUNTS: Final = ("auth", "cubbyhole", "identity", "sys", "token")
"""Vault's own endpoints: never a KV engine, and reaching them is privilege escalation.
Compared case-insensitively, and any mount under them (``sys/foo``) is refused too.

The one list: the store model's ``kvMount`` rule, :func:`validate_kv_mount` and the CRD's CEL rule
(:data:`RESERVED_MOUNT_RULE`, copied verbatim into crds/rotationstores.rotator.dev.yaml and
compared there by tests/unit/test_store_crd_table.py) all derive from it."""

RESERVED_MOUNT_PATTERN: Final = "(?i)^(" + "|".join(RESERVED_MOUNTS) + ")(/|$)"
"""A mount that is, or is under, a reserved one (RE2 and Python ``re`` read it alike)."""

RESERVED_MOUNT_RULE: Final = f"!self.matches('{RESERVED_MOUNT_PATTERN}')"
"""The CRD's CEL rule on ``spec.vault.kvMount``."""

RESERVED_MOUNT_MESSAGE: Final = f"must not be a Vault system mount ({', '.join(RESERVED_MOUNTS)})"
"""What the CRD rule and the store model say when a mount is reserved."""

STAGING_SUFFIX: Final = ".rotator-pending"
"""Suffix of the sibling path that holds a pending credential (see ``rotator.stores.vault.kv2``)."""

_SEGMENT: Final = re.compile(r"[A-Za-z0-9._-]+")


def _validate_segments(value: object, field: str, what: str, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidSpecError(field, f"{what} must be a string")
    if not value:
        raise InvalidSpecError(field, f"{what} must not be empty")
    if len(value) > limit:
        raise InvalidSpecError(field, f"{what} must be at most {limit} characters")
    if value.startswith("/") or value.endswith("/"):
        raise InvalidSpecError(field, f"{what} must not start or end with '/'")
    for segment in value.split("/"):
        if not segment:
            raise InvalidSpecError(field, f"{what} must not contain empty segments ('//')")
        if segment in (".", ".."):
            raise InvalidSpecError(field, f"{what} must not contain '.' or '..' segments")
        if not _SEGMENT.fullmatch(segment):
            raise InvalidSpecError(
                field, f"{what} segments may contain only letters, digits, '.', '_' and '-'"
            )
    return value


def validate_kv_path(path: object, field: str = "spec.path") -> str:
    """``path`` if it is a safe KV path, else InvalidSpecError naming ``field``."""
    checked = _validate_segments(path, field, "path", MAX_PATH_LENGTH)
    if any(segment.endswith(STAGING_SUFFIX) for segment in checked.split("/")):
        reserved = f"path segments must not end with {STAGING_SUFFIX!r} (reserved by rotator)"
        raise InvalidSpecError(field, reserved)
    return checked


def is_reserved_mount(mount: str) -> bool:
    """Whether ``mount`` is, or is under, one of :data:`RESERVED_MOUNTS` (any case)."""
    return re.match(RESERVED_MOUNT_PATTERN, mount) is not None


def validate_kv_mount(mount: object, field: str = "spec.vault.kvMount") -> str:
    """``mount`` if it is a safe KV mount path, else InvalidSpecError naming ``field``."""
    checked = _validate_segments(mount, field, "mount", MAX_MOUNT_LENGTH)
    if is_reserved_mount(checked):
        first = checked.split("/", 1)[0]
        raise InvalidSpecError(field, f"mount {first!r} is reserved by Vault and holds no secrets")
    return checked


__all__ = [
    "MAX_MOUNT_LENGTH",
    "MAX_PATH_LENGTH",
    "RESERVED_MOUNTS",
    "RESERVED_MOUNT_MESSAGE",
    "RESERVED_MOUNT_PATTERN",
    "RESERVED_MOUNT_RULE",
    "STAGING_SUFFIX",
    "is_reserved_mount",
    "validate_kv_mount",
    "validate_kv_path",
]

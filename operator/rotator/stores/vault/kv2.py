"""Vault / OpenBao KV v2 store.

Layout of one rotated path ``<mount>/<path>``:

- each KV version's data is ``{"value": <secret>, "rotator.dev/rotation-id": <id>}``; a value
  that was there before rotator (no rotation id, key ``value`` or a single key) is adopted as
  the current version;
- the path's ``custom_metadata`` holds ownership and pointers: ``managed-by: rotator``,
  ``rotator.dev/owner: <ns>/<name>``, ``rotator.dev/current-version``,
  ``rotator.dev/previous-version`` and ``rotator.dev/failed-versions`` (comma list, bounded).
  Consumers that read "latest" see the pending version early; consumers of rotator read the
  current pointer (and the Kubernetes Secret, which is only synced from current).

KV v2 purges versions beyond ``max_versions`` (10 by default); before writing, the store raises
the path's ``max_versions`` when the write would otherwise purge the current or previous version.

Writes are check-and-set against the latest version (``cas=0`` for a new path); a CAS failure
is re-read: if the latest version carries our rotation id (our own earlier write whose answer
was lost) it is adopted, otherwise StoreConflict. Transient failures (connection refused,
timeouts, 5xx, 429) are retried briefly here (3 attempts, 0.2-1 s) and then raised as
StoreUnavailable for the engine's backoff. Secret values never reach exception text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, TypeVar

import hvac
import hvac.exceptions
import requests
from pydantic import SecretStr
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from rotator.logs import SENSITIVE
from rotator.models.errors import InvalidSpecError
from rotator.models.paths import validate_kv_mount, validate_kv_path
from rotator.stores.base import (
    CURRENT_VERSION,
    FAILED_VERSIONS,
    MANAGED_BY,
    MANAGED_BY_VALUE,
    MAX_FAILED_VERSIONS,
    OWNER,
    PREVIOUS_VERSION,
    ROTATION_ID,
    VALUE_KEY,
    OnRequest,
    StoredVersion,
    VersionState,
    no_metrics,
)
from rotator.stores.errors import (
    StoreAuthError,
    StoreConflict,
    StoreError,
    StoreMountError,
    StoreOwnershipError,
    StoreRefused,
    StoreUnavailable,
    StoreVersionNotFound,
)
from rotator.stores.vault.client import TRANSIENT as _TRANSIENT

T = TypeVar("T")

SCAN_LIMIT: Final = 20
"""Newest versions read when looking for a rotation id or an adopted value: bounded work per call,
and far more than one rotation ever leaves behind (pending + current + previous + a few failed)."""

KV_DEFAULT_MAX_VERSIONS: Final = 10
"""Versions KV v2 keeps per path when neither the path nor the mount sets max_versions."""


class _CasMismatch(Exception):
    """Internal: the check-and-set write lost against a newer version."""


def _parse_time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    # Vault gives nanoseconds ("...:05.123456789Z"); Python takes at most microseconds.
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(trimmed)
    except ValueError:
        return None


def _adoptable_value(data: Mapping[str, Any]) -> str | None:
    """The secret in a version's data: key ``value``, or the only key of a foreign value."""
    if isinstance(data.get(VALUE_KEY), str):
        return str(data[VALUE_KEY])
    foreign = [v for k, v in data.items() if k != ROTATION_ID]
    if len(foreign) == 1 and isinstance(foreign[0], str):
        return foreign[0]
    return None


def _version_number(version: str) -> int:
    if not version.isdigit() or int(version) < 1:
        raise StoreVersionNotFound(f"not a KV v2 version number: {version!r}")
    return int(version)


@dataclass
class _Metadata:
    latest: int
    versions: dict[int, Mapping[str, Any]]
    custom: dict[str, str]
    delete_version_after: str
    max_versions: int
    reads: dict[int, Mapping[str, Any] | None] = field(default_factory=dict)
    """Per-call cache of version data already read (None = deleted/destroyed)."""

    def alive(self, version: int) -> bool:
        info = self.versions.get(version)
        return info is not None and not info.get("destroyed") and not info.get("deletion_time")

    def destroyed(self, version: int) -> bool:
        info = self.versions.get(version)
        return info is None or bool(info.get("destroyed"))

    def created_at(self, version: int) -> datetime | None:
        return _parse_time((self.versions.get(version) or {}).get("created_time"))

    def failed(self) -> list[str]:
        raw = self.custom.get(FAILED_VERSIONS, "")
        return [v for v in raw.split(",") if v]

    def newest_alive(self) -> list[int]:
        return sorted((v for v in self.versions if self.alive(v)), reverse=True)[:SCAN_LIMIT]


class VaultKV2Store:
    """Store on one KV v2 path. ``client`` is an ``hvac.Client`` built by ``vault_client``."""

    kind = "vault"

    def __init__(
        self,
        client: hvac.Client,
        mount: str,
        path: str,
        on_request: OnRequest = no_metrics,
        *,
        attempts: int = 3,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        try:
            # Defence in depth: the spec validates these too, but a store must never be built on
            # a path that leaves its mount ("..", "//") or on one of Vault's own endpoints.
            self.mount = validate_kv_mount(mount, "mount")
            self.path = validate_kv_path(path, "path")
        except InvalidSpecError as exc:
            raise StoreRefused(f"vault {mount!r} / {path!r}: refused: {exc}") from None
        self._client = client
        self._on_request = on_request
        self._mount_limit: int | None = None
        self._kv2_checked = False
        retry_args: dict[str, Any] = {} if sleep is None else {"sleep": sleep}
        self._retrying = Retrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=0.2, min=0.2, max=1.0),
            retry=retry_if_exception(lambda exc: isinstance(exc, _TRANSIENT)),
            reraise=True,
            **retry_args,
        )

    @property
    def location(self) -> str:
        return f"vault {self.mount}/{self.path}"

    def __repr__(self) -> str:
        return f"VaultKV2Store({self.mount!r}, {self.path!r})"

    # -- plumbing -------------------------------------------------------------------------------

    @property
    def _kv(self) -> Any:
        return self._client.secrets.kv.v2

    def _call(self, operation: str, fn: Callable[[], T], *, missing_ok: bool = False) -> T | None:
        """Run one API call with short retries; count it; translate failures.

        Messages are built from the exception type and Vault's error text (which never echoes
        request bodies), and the cause is not chained, so no value can leak through.
        """
        try:
            result = self._retrying(fn)
        except hvac.exceptions.InvalidPath:
            if missing_ok:
                self._on_request(operation, "ok")
                return None
            self._on_request(operation, "error")
            raise StoreVersionNotFound(f"{self.location}: not found ({operation})") from None
        except _CasMismatch:
            self._on_request(operation, "error")
            raise
        except _TRANSIENT as exc:
            self._on_request(operation, "error")
            raise StoreUnavailable(f"{self.location}: {operation} failed: {self._describe(exc)}") from None
        except (hvac.exceptions.Unauthorized, hvac.exceptions.Forbidden) as exc:
            self._on_request(operation, "error")
            raise StoreAuthError(f"{self.location}: {operation} denied: {self._describe(exc)}") from None
        except hvac.exceptions.VaultError as exc:
            self._on_request(operation, "error")
            raise StoreError(f"{self.location}: {operation} failed: {self._describe(exc)}") from None
        except requests.exceptions.RequestException as exc:
            # Only the type: some requests errors quote the request headers, X-Vault-Token included.
            self._on_request(operation, "error")
            raise StoreUnavailable(f"{self.location}: {operation} failed: {type(exc).__name__}") from None
        self._on_request(operation, "ok")
        return result

    @staticmethod
    def _describe(exc: BaseException) -> str:
        if isinstance(exc, hvac.exceptions.VaultError):
            detail = (
                ", ".join(str(e) for e in exc.errors) if exc.errors else str(exc.args[0] if exc.args else "")
            )
        else:
            detail = str(exc)
        return f"{type(exc).__name__}: {detail[:300]}"

    def _metadata(self) -> _Metadata | None:
        response = self._call(
            "read_metadata",
            lambda: self._kv.read_secret_metadata(path=self.path, mount_point=self.mount),
            missing_ok=True,
        )
        if response is None:
            return None
        data: Mapping[str, Any] = response.get("data") or {}
        return _Metadata(
            latest=int(data.get("current_version") or 0),
            versions={int(k): v for k, v in (data.get("versions") or {}).items()},
            custom={str(k): str(v) for k, v in (data.get("custom_metadata") or {}).items()},
            delete_version_after=str(data.get("delete_version_after") or "0s"),
            max_versions=int(data.get("max_versions") or 0),
        )

    def _read(self, meta: _Metadata, version: int) -> Mapping[str, Any] | None:
        """A version's data, or None if deleted/destroyed (cached per call in ``meta``)."""
        if version in meta.reads:
            return meta.reads[version]
        data: Mapping[str, Any] | None = None
        if meta.alive(version):
            response = self._call(
                "read_version",
                lambda: self._kv.read_secret_version(
                    path=self.path, version=version, mount_point=self.mount, raise_on_deleted_version=True
                ),
                missing_ok=True,
            )
            data = ((response or {}).get("data") or {}).get("data")
        meta.reads[version] = data
        return data

    def _mount_max_versions(self) -> int:
        """The mount's max_versions (0 means the KV v2 default); cached per store."""
        if self._mount_limit is None:
            try:
                response = self._call(
                    "read_config", lambda: self._kv.read_configuration(mount_point=self.mount)
                )
                self._mount_limit = int(((response or {}).get("data") or {}).get("max_versions") or 0)
            except StoreUnavailable:
                raise
            except StoreError:
                self._mount_limit = 0  # no read on <mount>/config: assume the default
        return self._mount_limit or KV_DEFAULT_MAX_VERSIONS

    def _require_kv2(self) -> None:
        """Refuse a mount that is not a KV version 2 engine, before the first write to a path.

        A KV v1 mount would take our writes as plain keys (``<mount>/data/<path>``) and answer
        404 to metadata reads: the generated password would land in the wrong shape and the
        rotation fail later. ``sys/internal/ui/mounts/<mount>`` answers without sudo for a token
        with any capability on the mount (403 when there is no such mount or no capability);
        it names the mount that *contains* the path, so the answer must be this exact mount.
        Checked once per store object, and only when the path is not ours yet.
        """
        if self._kv2_checked:
            return
        where = f"{self.location}: mount {self.mount!r}"
        try:
            response = self._call(
                "read_mount",
                lambda: self._client.adapter.get(f"/v1/sys/internal/ui/mounts/{self.mount}"),
            )
        except (StoreAuthError, StoreVersionNotFound):
            raise StoreMountError(
                f"{where} is not a KV version 2 engine: no such mount, or this identity has no "
                "capability on it"
            ) from None
        data: Mapping[str, Any] = (response or {}).get("data") or {}
        mount_type = data.get("type")
        version = str((data.get("options") or {}).get("version") or "1")
        if data.get("path") != f"{self.mount}/":
            raise StoreMountError(
                f"{where} is not a KV version 2 engine: it is a path inside mount {data.get('path')!r}"
            )
        if mount_type != "kv" or version != "2":
            found = f"type {mount_type!r}" + (f", version {version}" if mount_type == "kv" else "")
            raise StoreMountError(f"{where} is not a KV version 2 engine ({found}); nothing was written")
        self._kv2_checked = True

    def _keep_protected_versions(self, meta: _Metadata) -> None:
        """Raise the path's max_versions if the next write would purge current or previous.

        KV v2 permanently deletes the oldest version beyond max_versions (10 by default), so a
        run of failed rotations (each writes a version, rollback keeps pointing at an old one)
        would otherwise silently delete the live credential. The path is ours (ensure_owned).
        """
        previous = meta.custom.get(PREVIOUS_VERSION, "")
        protected = [
            v for v in (self._current_number(meta), int(previous) if previous.isdigit() else None) if v
        ]
        if not protected:
            return
        needed = meta.latest + 1 - min(protected) + 1
        if needed <= (meta.max_versions or self._mount_max_versions()):
            return
        self._call(
            "update_metadata",
            lambda: self._kv.update_metadata(
                path=self.path,
                max_versions=needed,
                custom_metadata=meta.custom,
                delete_version_after=meta.delete_version_after,
                mount_point=self.mount,
            ),
        )

    def _write_custom(self, meta: _Metadata | None, custom: dict[str, str]) -> None:
        delete_after = meta.delete_version_after if meta is not None else "0s"
        self._call(
            "update_metadata",
            lambda: self._kv.update_metadata(
                path=self.path,
                custom_metadata=custom,
                delete_version_after=delete_after,  # keep the path's own setting
                mount_point=self.mount,
            ),
        )

    def _current_number(self, meta: _Metadata) -> int | None:
        pointer = meta.custom.get(CURRENT_VERSION, "")
        if pointer.isdigit():
            return int(pointer)
        # No pointer yet: the newest live value that rotator did not write is the adopted current.
        for version in meta.newest_alive():
            data = self._read(meta, version)
            if data is None or ROTATION_ID in data:
                continue
            return version if _adoptable_value(data) is not None else None
        return None

    def _state(self, meta: _Metadata, version: int, current: int | None) -> VersionState:
        if str(version) in meta.failed():
            return VersionState.FAILED
        if not meta.alive(version):
            return VersionState.DESTROYED
        if version == current:
            return VersionState.CURRENT
        if meta.custom.get(PREVIOUS_VERSION) == str(version):
            return VersionState.PREVIOUS
        return VersionState.PENDING

    def _stored(self, meta: _Metadata, version: int, rotation_id: str | None) -> StoredVersion:
        state = self._state(meta, version, self._current_number(meta))
        return StoredVersion(str(version), rotation_id, meta.created_at(version), state)

    # -- Store ----------------------------------------------------------------------------------

    def ensure_owned(self, owner: str, adopt: bool) -> bool:
        meta = self._metadata()
        if meta is None:
            self._require_kv2()
            self._write_custom(None, {MANAGED_BY: MANAGED_BY_VALUE, OWNER: owner})
            return False
        tagged = meta.custom.get(MANAGED_BY) == MANAGED_BY_VALUE
        found_owner = meta.custom.get(OWNER)
        if tagged and found_owner == owner:
            return True
        if not adopt or (tagged and found_owner):
            raise StoreOwnershipError(self.location, found_owner, owner)
        self._require_kv2()
        self._write_custom(meta, {**meta.custom, MANAGED_BY: MANAGED_BY_VALUE, OWNER: owner})
        return True

    def current(self) -> StoredVersion | None:
        meta = self._metadata()
        if meta is None:
            return None
        version = self._current_number(meta)
        if version is None:
            return None
        data = self._read(meta, version) or {}
        rotation_id = data.get(ROTATION_ID)
        state = VersionState.CURRENT if meta.alive(version) else VersionState.DESTROYED
        return StoredVersion(
            str(version),
            rotation_id if isinstance(rotation_id, str) else None,
            meta.created_at(version),
            state,
        )

    def find_by_rotation(self, rotation_id: str) -> StoredVersion | None:
        meta = self._metadata()
        return None if meta is None else self._find(meta, rotation_id)

    def _find(self, meta: _Metadata, rotation_id: str) -> StoredVersion | None:
        for version in meta.newest_alive():
            data = self._read(meta, version)
            if data is not None and data.get(ROTATION_ID) == rotation_id:
                return self._stored(meta, version, rotation_id)
        return None

    def write_pending(self, value: SecretStr, rotation_id: str) -> StoredVersion:
        meta = self._metadata()
        if meta is None or meta.custom.get(MANAGED_BY) != MANAGED_BY_VALUE:
            self._require_kv2()  # not ours yet (a KV v1 mount never shows metadata at all)
        if meta is not None and (existing := self._find(meta, rotation_id)) is not None:
            return existing
        if meta is not None:
            self._keep_protected_versions(meta)
        cas = meta.latest if meta is not None else 0
        payload = {VALUE_KEY: value.get_secret_value(), ROTATION_ID: rotation_id}

        def write() -> Any:
            try:
                return self._kv.create_or_update_secret(
                    path=self.path, secret=payload, cas=cas, mount_point=self.mount
                )
            except hvac.exceptions.InvalidRequest as exc:
                if "check-and-set" in str(exc):
                    raise _CasMismatch from None
                raise

        try:
            response = self._call("write", write)
        except _CasMismatch:
            # Lost the race. Our own earlier attempt (answer lost, then retried)? Adopt it.
            fresh = self._metadata()
            found = self._find(fresh, rotation_id) if fresh is not None else None
            if found is not None:
                return found
            latest = fresh.latest if fresh is not None else 0
            raise StoreConflict(
                f"{self.location}: check-and-set failed, expected latest version {cas} but found {latest} "
                f"written by someone else (rotation {rotation_id})"
            ) from None
        data: Mapping[str, Any] = (response or {}).get("data") or {}
        if not isinstance(data.get("version"), int):
            raise StoreError(f"{self.location}: write answered without a version number")
        return StoredVersion(
            str(data["version"]), rotation_id, _parse_time(data.get("created_time")), VersionState.PENDING
        )

    def promote(self, new_version: str, old_version: str | None) -> None:
        number = _version_number(new_version)
        meta = self._metadata()
        if meta is None or not meta.alive(number):
            raise StoreVersionNotFound(f"{self.location}: cannot promote version {new_version}: gone")
        if new_version == old_version:
            raise StoreRefused(f"{self.location}: cannot promote version {new_version} over itself")
        custom = dict(meta.custom)
        custom[CURRENT_VERSION] = new_version
        if old_version is None:
            custom.pop(PREVIOUS_VERSION, None)
        else:
            custom[PREVIOUS_VERSION] = old_version
        if custom != meta.custom:
            self._write_custom(meta, custom)

    def read_value(self, version: str) -> SecretStr:
        number = _version_number(version)
        meta = self._metadata()
        data = self._read(meta, number) if meta is not None else None
        if data is None:
            raise StoreVersionNotFound(f"{self.location}: version {version} is destroyed or missing")
        value = _adoptable_value(data)
        if value is None:
            raise StoreError(f"{self.location}: version {version} has no '{VALUE_KEY}' key")
        SENSITIVE.add(value)  # whatever this process holds, its logs mask
        return SecretStr(value)

    def revoke(self, version: str) -> None:
        number = _version_number(version)
        meta = self._metadata()
        if meta is None:
            return
        if number == self._current_number(meta):
            raise StoreRefused(f"{self.location}: refusing to revoke version {version}: it is current")
        if not meta.destroyed(number):
            self._destroy(number)
        if meta.custom.get(PREVIOUS_VERSION) == version:
            custom = dict(meta.custom)
            del custom[PREVIOUS_VERSION]
            self._write_custom(meta, custom)

    def mark_failed(self, failed_version: str, restore_version: str | None) -> None:
        number = _version_number(failed_version)
        if restore_version == failed_version:
            raise StoreRefused(f"{self.location}: cannot restore version {failed_version} onto itself")
        meta = self._metadata()
        if meta is None:
            return
        if restore_version is not None and not meta.alive(_version_number(restore_version)):
            raise StoreVersionNotFound(
                f"{self.location}: cannot restore version {restore_version}: destroyed or missing"
            )
        custom = dict(meta.custom)
        if restore_version is not None:
            custom[CURRENT_VERSION] = restore_version
        elif custom.get(CURRENT_VERSION) == failed_version:
            del custom[CURRENT_VERSION]
        if PREVIOUS_VERSION in custom and custom[PREVIOUS_VERSION] in (failed_version, restore_version):
            del custom[PREVIOUS_VERSION]
        failed = [v for v in meta.failed() if v != failed_version] + [failed_version]
        custom[FAILED_VERSIONS] = ",".join(failed[-MAX_FAILED_VERSIONS:])
        # Pointer first, then destroy: a crash in between leaves a harmless, repeatable state.
        if custom != meta.custom:
            self._write_custom(meta, custom)
        if not meta.destroyed(number):
            self._destroy(number)

    def _destroy(self, version: int) -> None:
        self._call(
            "destroy",
            lambda: self._kv.destroy_secret_versions(
                path=self.path, versions=[version], mount_point=self.mount
            ),
            missing_ok=True,
        )


__all__ = ["KV_DEFAULT_MAX_VERSIONS", "SCAN_LIMIT", "VaultKV2Store"]

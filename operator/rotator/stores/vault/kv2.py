"""Vault / OpenBao KV v2 store.

Two KV paths per rotated credential ``<mount>/<path>``:

- ``<path>``, the **published** path: its latest version is, at every instant, the credential
  that works. Readers of "latest" (External Secrets, the Vault Secrets Operator, Vault Agent read
  ``<mount>/data/<path>`` without a version) therefore only ever see a promoted credential:
  a pending value is never written here before ``promote``, and a rollback writes the restored
  value anew as the newest version (a destroyed version cannot be undeleted) *before* the failed
  one is destroyed. Before the first promotion the path has metadata but no version (readers get
  404, never a value that is not valid yet).
- ``<path>.rotator-pending``, the **staging** path (``rotator.models.paths.STAGING_SUFFIX``, a
  suffix no policy path may use): version 1 is the ownership claim ``{owner, managed-by}``,
  later versions hold pending values until they are promoted (then destroyed). Nobody but
  rotator reads it. Vault policies must grant rotator ``<path>*``-style access to both paths.

Version ids are the published path's KV version numbers, as before: ``write_pending`` on a path
whose latest version is N stages the value as version ``N+1`` and ``promote`` publishes it with
check-and-set N, so it lands exactly as version N+1. Every version rotator writes carries
``{"value", "rotator.dev/rotation-id", "rotator.dev/version": <id>}``; a restored copy carries
the id of the version it restores, so one id may own several KV versions (the original and its
copies) and ``read_value``/``revoke`` act on all of them. A value that was there before rotator
(no rotation id, key ``value`` or a single key) is adopted as the current version; its id is its
KV version number. If a foreign write takes number N+1 after the view ``write_pending``
promised it from (read at the rotation's start) and before ``promote``, ``promote`` refuses
(StoreRefused) and the engine rolls back: ``mark_failed`` destroys the staged copy and never
touches the foreign version (without an old version no ``mark_failed`` follows, and the refusal
destroys the staged copy itself).

Custom metadata of the published path holds ownership and pointers: ``managed-by: rotator``,
``rotator.dev/owner: <ns>/<name>``, ``rotator.dev/current-version``,
``rotator.dev/previous-version`` and ``rotator.dev/failed-versions`` (comma list, bounded).
Every change is a JSON merge patch (``PATCH <mount>/metadata/<path>``, Vault's ``patch``
capability), so keys rotator does not own are never dropped; only a path without metadata yet is
created with a plain metadata write.

**Ownership is claimed atomically**: the first write to a path it does not own is the claim
record, written with check-and-set 0 on the staging path. KV v2 has exactly one atomic create,
``cas=0`` on data; on the published path it would publish a placeholder to readers of latest,
on the staging path nobody sees it. Of two policies racing for a new path exactly one write
lands; the other reads the claim record and gets StoreOwnershipError. The winner then merges the
ownership tags into the published path's metadata. Only a claim not decided by its own write
(the record read back after a lost answer, or a staging path without a record) re-reads them:
should another owner's tag be there (metadata has no check-and-set), it raises
StoreOwnershipError and undoes nothing.
Before that first write the mount is checked to be KV version 2 (StoreMountError otherwise).

KV v2 purges versions beyond ``max_versions`` (10 by default); before publishing, the store
raises the path's ``max_versions`` when the write would otherwise purge the current or previous
version.

Requests: a rotation costs 8 HTTP requests in the steady state (6 writes, 1 value read, 1
metadata read; tests/integration/test_store_request_counts.py counts them on the wire and says
why not fewer). A ``KV2Cache`` per Vault session, shared by the store objects of successive
reconciles, carries what this process learned: the tags of each KV version (rotation id,
version id, claim owner; a version's data never changes, and its creation time tells a path
written anew from its former self), the mount checks, the last metadata read or written per
path, updated by rotator's own writes, and the one value this process just staged (handed from
``write_pending`` to ``promote`` to the sync step's ``read_value``, which takes it out; never
past that). Only lookups answer from the view (``find_by_rotation``; ``write_pending``, whose
version number is promised from the view and checked by promote's check-and-set publish;
``read_value``, whose data read is real and which looks again when the version is gone;
``current`` right after ``ensure_owned`` read the path), ``promote`` (its publish is a
check-and-set on the number before ours, and a conflict reads afresh), and the staging path,
which nobody but rotator writes. ``ensure_owned`` and ``mark_failed`` read the published path
afresh once per call. ``revoke`` does too, unless the same store object's ``read_value`` just
read the published path's latest version: ``read_value`` reads "latest" (no ``?version=``)
whenever the view says the version asked for is the latest, and that answer also names the
version that is latest now and carries the path's custom metadata (owner, current, previous;
Vault 1.9+ and OpenBao). When it shows the view complete (the same latest version, pointers
present, no soft-deleted version that may have been undeleted since), ``revoke`` acts from it
(``_looked``): it is as fresh as a metadata read taken in the same reconcile, and revoke's checks
(never destroy what is current or what readers of latest get) run on it unchanged; anything
else reads the metadata. Every check-and-set conflict re-reads. A foreign write is met where
it matters: at the rotation's start, at promote's check-and-set, before destroying. A crash
loses the cache, nothing else.

Crash safety: each verb writes in an order whose every prefix is harmless and repeatable
(promote: publish, then pointers, then drop the staged copy; rollback: pointers, then publish the
restored value, then destroy the failed one), and each re-derives what is done from the store.
Transient failures (connection refused, timeouts, 5xx, 429) are retried briefly here (3 attempts,
0.2-1 s) and then raised as StoreUnavailable for the engine's backoff; a server certificate that
does not verify is raised at once, naming ``spec.vault.caBundle``. Secret values never reach
exception text.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, TypeVar

import hvac
import hvac.exceptions
import requests
from pydantic import SecretStr

from rotator.logs import SENSITIVE
from rotator.models.errors import InvalidSpecError
from rotator.models.keys import SECRET_VERSION as VERSION_KEY
from rotator.models.paths import STAGING_SUFFIX, validate_kv_mount, validate_kv_path
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
from rotator.stores.handover import Handover
from rotator.stores.retries import QuickRetries
from rotator.stores.vault.client import TRANSIENT as _TRANSIENT
from rotator.stores.vault.kv_api import KV2Api
from rotator.stores.vault.tls import untrusted_certificate, verification_failed

T = TypeVar("T")

SCAN_LIMIT: Final = 20
"""Newest versions read when looking for a rotation id or an adopted value: bounded work per call,
and far more than one rotation ever leaves behind (pending + current + previous + a few failed)."""

KV_DEFAULT_MAX_VERSIONS: Final = 10
"""Versions KV v2 keeps per path when neither the path nor the mount sets max_versions."""

_SKIP: Final = frozenset({ROTATION_ID, VERSION_KEY})


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
    foreign = [v for k, v in data.items() if k not in _SKIP]
    if len(foreign) == 1 and isinstance(foreign[0], str):
        return foreign[0]
    return None


def _version_number(version: str) -> int:
    if not version.isdigit() or int(version) < 1:
        raise StoreVersionNotFound(f"not a KV v2 version number: {version!r}")
    return int(version)


def _text(data: Mapping[str, Any] | None, key: str) -> str | None:
    found = (data or {}).get(key)
    return found if isinstance(found, str) else None


@dataclass
class _Metadata:
    path: str
    latest: int
    versions: dict[int, Mapping[str, Any]]
    custom: dict[str, str]
    max_versions: int

    def alive(self, version: int) -> bool:
        info = self.versions.get(version)
        return info is not None and not info.get("destroyed") and not info.get("deletion_time")

    def created_at(self, version: int) -> datetime | None:
        return _parse_time((self.versions.get(version) or {}).get("created_time"))

    def stamp(self, version: int) -> tuple[int, str]:
        """Names one immutable KV version: a number is reused after the path is deleted and
        written again, its creation time is not."""
        return version, str((self.versions.get(version) or {}).get("created_time") or "")

    def failed(self) -> list[str]:
        raw = self.custom.get(FAILED_VERSIONS, "")
        return [v for v in raw.split(",") if v]

    def newest_alive(self) -> list[int]:
        return sorted((v for v in self.versions if self.alive(v)), reverse=True)[:SCAN_LIMIT]

    def owner(self) -> str | None:
        """The owner tag, when the path is tagged as rotator's."""
        if self.custom.get(MANAGED_BY) != MANAGED_BY_VALUE:
            return None
        return self.custom.get(OWNER) or None


@dataclass(frozen=True)
class _Tags:
    """What rotator looks up in a version's data, without its value (cached: never a secret)."""

    rotation_id: str | None
    version: str | None
    owner: str | None
    adoptable: bool

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> _Tags:
        return cls(
            _text(data, ROTATION_ID),
            _text(data, VERSION_KEY),
            _text(data, OWNER),
            _adoptable_value(data) is not None,
        )


@dataclass(frozen=True)
class _LatestLook:
    """What a data read of the published path's latest version (no ``?version=``) answered
    besides the data: which KV version was latest then, and the path's custom metadata (Vault
    1.9+ and OpenBao put both in ``data.metadata``; ``custom`` is None when the answer had none).
    Taken by ``read_value``, used only by a ``revoke`` called right after it on the same store
    object (``VaultKV2Store._looked``)."""

    stamp: tuple[int, str]
    custom: dict[str, str] | None


@dataclass
class KV2Cache:
    """What one Vault session learned, carried from one reconcile (store object) to the next.

    ``tags`` are immutable facts (a KV version's data never changes; the key includes its
    creation time, so a path deleted and written again is not confused with its former self).
    ``views`` are the last metadata read or written for each path, updated by rotator's own
    writes; only lookups use them (``find_by_rotation``, ``write_pending``, ``read_value``),
    ``promote`` right after ``write_pending`` and ``revoke`` right after a ``read_value`` of the
    latest version, and each of those is guarded by a real read or a check-and-set (module
    docstring, "Requests"). ``mounts`` and ``limits`` remember the KV v2 check and the
    mount's max_versions.
    """

    tags: dict[str, dict[tuple[int, str], _Tags]] = field(default_factory=dict)
    views: dict[str, _Metadata | None] = field(default_factory=dict)
    mounts: set[str] = field(default_factory=set)
    limits: dict[str, int] = field(default_factory=dict)
    handover: Handover = field(default_factory=Handover)
    """Per published path, the one value this process just wrote there (version id, value):
    ``write_pending`` hands it to ``promote`` (no read of the staged copy it wrote a moment ago)
    and ``promote`` to the next ``read_value`` of that version (the sync step), which takes it
    out; ``ensure_owned``, ``revoke``, ``mark_failed`` and a refused ``promote`` drop it. So no
    value outlives the rotation's sync step, and the revoke step's read (the new credential must
    still be there before the old one goes) is always a real one."""


def _retryable(exc: Exception) -> bool:
    # A certificate that did not verify will not in a second: the engine's backoff waits.
    return isinstance(exc, _TRANSIENT) and not untrusted_certificate(exc)


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
        cache: KV2Cache | None = None,
    ) -> None:
        # Defence in depth: the spec validates these too, but a store must never be built on a
        # path that leaves its mount ("..", "//") or on one of Vault's own endpoints. A bad mount
        # is the store admin's kvMount (StoreMountError: a condition naming that field).
        try:
            self.mount = validate_kv_mount(mount, "spec.vault.kvMount")
        except InvalidSpecError as exc:
            raise StoreMountError(
                f"vault {mount!r} / {path!r}: refused: {exc}; nothing was written"
            ) from None
        try:
            self.path = validate_kv_path(path, "path")
        except InvalidSpecError as exc:
            raise StoreRefused(f"vault {mount!r} / {path!r}: refused: {exc}") from None
        self._api = KV2Api(client)
        self._on_request = on_request
        # One per Vault session (rotator.stores.opener), shared by the store objects of
        # successive reconciles; a store built without one learns only for itself.
        self._cache = cache if cache is not None else KV2Cache()
        self._owned_view = False
        """ensure_owned just read the published path: the current() that follows answers from it."""
        self._latest_look: _LatestLook | None = None
        """read_value just read the published path's latest version: the revoke that follows
        acts from that answer (``_looked``). Every other verb forgets it."""
        self._retrying = QuickRetries(attempts, _retryable, sleep or time.sleep)

    @property
    def location(self) -> str:
        return f"vault {self.mount}/{self.path}"

    def __repr__(self) -> str:
        return f"VaultKV2Store({self.mount!r}, {self.path!r})"

    # -- plumbing -------------------------------------------------------------------------------

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
            verdict = untrusted_certificate(exc)
            detail = self._describe(exc) if verdict is None else verification_failed(verdict, None)
            raise StoreUnavailable(f"{self.location}: {operation} failed: {detail}") from None
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

    @property
    def staging_path(self) -> str:
        """The sibling path holding the claim record and pending values (module docstring)."""
        return f"{self.path}{STAGING_SUFFIX}"

    def _metadata(self, path: str | None = None, *, carried: bool = False) -> _Metadata | None:
        """A path's metadata: read now, or with ``carried`` the session's view when it has one.

        Only lookups pass ``carried`` (module docstring, "Requests"); every verb that writes
        pointers or destroys reads the published path afresh, once per call, or (``revoke``)
        acts from a data read of latest taken a moment before (``_looked``).
        """
        where = path or self.path
        if carried and where in self._cache.views:
            return self._cache.views[where]
        response = self._call(
            "read_metadata",
            lambda: self._api.read_metadata(self.mount, where),
            missing_ok=True,
        )
        meta: _Metadata | None = None
        if response is not None:
            data: Mapping[str, Any] = response.get("data") or {}
            meta = _Metadata(
                path=where,
                latest=int(data.get("current_version") or 0),
                versions={int(k): v for k, v in (data.get("versions") or {}).items()},
                custom={str(k): str(v) for k, v in (data.get("custom_metadata") or {}).items()},
                max_versions=int(data.get("max_versions") or 0),
            )
        self._cache.views[where] = meta
        # Tags of versions that are gone can never be asked for again: keep the cache bounded.
        known = self._cache.tags.get(where)
        if known:
            alive = {meta.stamp(v) for v in meta.newest_alive()} if meta is not None else set()
            self._cache.tags[where] = {k: t for k, t in known.items() if k in alive}
        return meta

    def _tags(self, meta: _Metadata, version: int) -> _Tags | None:
        """A live version's tags (None if deleted/destroyed): from the cache, else one read."""
        if not meta.alive(version):
            return None
        cached = self._cache.tags.get(meta.path, {}).get(meta.stamp(version))
        if cached is not None:
            return cached
        data = self._fetch(meta, version)
        return _Tags.of(data) if data is not None else None

    def _fetch(self, meta: _Metadata, version: int) -> Mapping[str, Any] | None:
        """A version's data read now (its value is needed), or None if deleted/destroyed."""
        if not meta.alive(version):
            return None
        response = self._call(
            "read_version",
            lambda: self._api.read_data(self.mount, meta.path, version),
            missing_ok=True,
        )
        data: Mapping[str, Any] | None = ((response or {}).get("data") or {}).get("data")
        if data is not None:
            self._cache.tags.setdefault(meta.path, {})[meta.stamp(version)] = _Tags.of(data)
        return data

    def _fetch_latest(self, meta: _Metadata) -> Mapping[str, Any] | None:
        """The data of ``meta.latest``, read as latest (no ``?version=``); None unless the answer
        is that very KV version (number and creation time: the path moved on since the view).

        Same cost as a versioned read, and the answer says more: which version is latest *now*
        and the path's custom metadata (owner, current, previous), kept as ``_latest_look`` for
        a ``revoke`` that follows (``_looked``).
        """
        if not meta.alive(meta.latest):
            return None
        response = self._call(
            "read_version",
            lambda: self._api.read_data(self.mount, meta.path),
            missing_ok=True,
        )
        body: Mapping[str, Any] = (response or {}).get("data") or {}
        about: Mapping[str, Any] = body.get("metadata") or {}
        data = body.get("data")
        stamp = meta.stamp(meta.latest)
        answered = (about.get("version"), str(about.get("created_time") or ""))
        if not isinstance(data, Mapping) or answered != stamp:
            return None
        self._cache.tags.setdefault(meta.path, {})[stamp] = _Tags.of(data)
        custom = about.get("custom_metadata")
        self._latest_look = _LatestLook(
            stamp, {str(k): str(v) for k, v in custom.items()} if isinstance(custom, Mapping) else None
        )
        return data

    def _learn_write(self, path: str, written: Mapping[str, Any], payload: Mapping[str, str]) -> None:
        """Our own data write, into the session's view of ``path`` (if it has one)."""
        if path not in self._cache.views:
            return
        version = int(written["version"])
        info = {"created_time": written.get("created_time") or "", "deletion_time": "", "destroyed": False}
        meta = self._cache.views[path] or _Metadata(path, 0, {}, {}, 0)
        meta.versions[version] = info
        meta.latest = max(meta.latest, version)
        self._cache.views[path] = meta
        self._cache.tags.setdefault(path, {})[meta.stamp(version)] = _Tags.of(payload)

    def _write(self, path: str, payload: Mapping[str, str], cas: int, operation: str) -> Mapping[str, Any]:
        """One check-and-set data write; _CasMismatch when ``cas`` is no longer the latest version."""

        def write() -> Any:
            try:
                return self._api.write_data(self.mount, path, payload, cas)
            except hvac.exceptions.InvalidRequest as exc:
                if "check-and-set" in str(exc):
                    raise _CasMismatch from None
                raise

        response = self._call(operation, write)
        data: Mapping[str, Any] = (response or {}).get("data") or {}
        if not isinstance(data.get("version"), int):
            raise StoreError(f"{self.location}: {operation} answered without a version number")
        self._learn_write(path, data, payload)
        return data

    def _merge_custom(self, changes: Mapping[str, str | None]) -> None:
        """Merge ``changes`` into the published path's custom metadata (None deletes a key).

        A JSON merge patch: keys rotator does not own are never dropped, and the path's other
        settings (max_versions, delete_version_after) are left alone. A path without metadata yet
        answers 404 to a patch; it is created with a plain write (nothing of anyone's to keep).
        """

        def patch() -> bool:
            self._api.patch_metadata(self.mount, self.path, {"custom_metadata": dict(changes)})
            return True

        if self._call("patch_metadata", patch, missing_ok=True) is None:
            created = {k: v for k, v in changes.items() if v is not None}
            self._call(
                "update_metadata",
                lambda: self._api.write_metadata(self.mount, self.path, created),
            )
        if self.path in self._cache.views:
            meta = self._cache.views[self.path] or _Metadata(self.path, 0, {}, {}, 0)
            for key, value in changes.items():
                if value is None:
                    meta.custom.pop(key, None)
                else:
                    meta.custom[key] = value
            self._cache.views[self.path] = meta

    def _destroy(self, path: str, versions: list[int]) -> None:
        if not versions:
            return
        self._call(
            "destroy",
            lambda: self._api.destroy(self.mount, path, versions),
            missing_ok=True,
        )
        meta = self._cache.views.get(path)
        if meta is not None:
            for version in versions:
                if version in meta.versions:
                    meta.versions[version] = {**meta.versions[version], "destroyed": True}

    def _require_kv2(self) -> None:
        """Refuse a mount that is not a KV version 2 engine, before the first write to a path.

        A KV v1 mount would take our writes as plain keys (``<mount>/data/<path>``) and answer
        404 to metadata reads: the generated password would land in the wrong shape and the
        rotation fail later. ``sys/internal/ui/mounts/<mount>`` answers without sudo for a token
        with any capability on the mount (403 when there is no such mount or no capability);
        it names the mount that *contains* the path, so the answer must be this exact mount.
        Checked once per store object, and only when the path is not ours yet.
        """
        if self.mount in self._cache.mounts:
            return
        where = f"{self.location}: spec.vault.kvMount: mount {self.mount!r}"
        try:
            response = self._call(
                "read_mount",
                lambda: self._api.read_mount(self.mount),
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
        self._cache.mounts.add(self.mount)

    def _mount_max_versions(self) -> int:
        """The mount's max_versions (0 means the KV v2 default); cached per session."""
        if self.mount not in self._cache.limits:
            try:
                response = self._call("read_config", lambda: self._api.read_config(self.mount))
                limit = int(((response or {}).get("data") or {}).get("max_versions") or 0)
            except StoreUnavailable:
                raise
            except StoreError:
                limit = 0  # no read on <mount>/config: assume the default
            self._cache.limits[self.mount] = limit
        return self._cache.limits[self.mount] or KV_DEFAULT_MAX_VERSIONS

    def _keep_protected_versions(self, meta: _Metadata) -> None:
        """Raise the path's max_versions if the next write would purge current or previous.

        KV v2 permanently deletes the oldest version beyond max_versions (10 by default), so a
        run of failed rotations (each publishes a version and a restored copy) would otherwise
        silently delete the live credential. The path is ours (ensure_owned).
        """
        protected = [
            number
            for vid in (meta.custom.get(CURRENT_VERSION), meta.custom.get(PREVIOUS_VERSION))
            if vid and (number := self._newest(meta, vid, bare="any")) is not None
        ]
        if not protected:
            return
        needed = meta.latest + 1 - min(protected) + 1
        if needed <= (meta.max_versions or self._mount_max_versions()):
            return

        def patch() -> bool:
            self._api.patch_metadata(self.mount, self.path, {"max_versions": needed})
            return True

        self._call("patch_metadata", patch)
        meta.max_versions = needed

    # -- version ids -----------------------------------------------------------------------------

    def _versions_of(self, meta: _Metadata, vid: str, *, bare: str) -> list[int]:
        """The live published KV versions holding credential ``vid``, newest first.

        Versions rotator wrote say their id (``rotator.dev/version``). A version without that key
        belongs to ``vid`` when its number is ``vid`` and ``bare`` allows it: ``"any"`` (an adopted
        foreign value), ``"rotator"`` (only one rotator wrote before ids were recorded: it has a
        rotation id; a foreign value that took a pending version's number has none) or ``"no"``.
        """
        found: list[int] = []
        for version in meta.newest_alive():
            tags = self._tags(meta, version)
            if tags is None:
                continue
            if tags.version == vid or (
                tags.version is None
                and str(version) == vid
                and (bare == "any" or (bare == "rotator" and tags.rotation_id is not None))
            ):
                found.append(version)
        return found

    def _newest(self, meta: _Metadata, vid: str, *, bare: str) -> int | None:
        versions = self._versions_of(meta, vid, bare=bare)
        return versions[0] if versions else None

    def _staged(self, staged: _Metadata | None, vid: str) -> list[int]:
        """Live pending records of ``vid`` on the staging path, newest first."""
        if staged is None:
            return []
        return [
            version
            for version in staged.newest_alive()
            if (tags := self._tags(staged, version)) is not None and tags.version == vid
        ]

    def _latest_is(self, meta: _Metadata, vid: str) -> bool:
        """Readers of latest see ``vid``: the newest version is alive and holds it."""
        if not meta.alive(meta.latest):
            return False
        tags = self._tags(meta, meta.latest)
        tagged = tags.version if tags is not None else None
        return tagged == vid or (tagged is None and str(meta.latest) == vid)

    def _current_id(self, meta: _Metadata) -> str | None:
        pointer = meta.custom.get(CURRENT_VERSION, "")
        if pointer:
            return pointer
        # No pointer yet: the newest live value that rotator did not write is the adopted current.
        for version in meta.newest_alive():
            tags = self._tags(meta, version)
            if tags is None or tags.rotation_id is not None:
                continue
            if not tags.adoptable:
                return None
            return tags.version or str(version)
        return None

    def _state(self, meta: _Metadata, vid: str) -> VersionState:
        if vid in meta.failed():
            return VersionState.FAILED
        if vid == self._current_id(meta):
            return VersionState.CURRENT
        if meta.custom.get(PREVIOUS_VERSION) == vid:
            return VersionState.PREVIOUS
        return VersionState.PENDING

    def _find(
        self, meta: _Metadata | None, staged: _Metadata | None, rotation_id: str
    ) -> StoredVersion | None:
        """The credential written for ``rotation_id``: published (any state) or still pending."""
        if meta is not None:
            for version in meta.newest_alive():
                tags = self._tags(meta, version)
                if tags is not None and tags.rotation_id == rotation_id:
                    vid = tags.version or str(version)
                    return StoredVersion(vid, rotation_id, meta.created_at(version), self._state(meta, vid))
        if staged is not None:
            for version in staged.newest_alive():
                tags = self._tags(staged, version)
                pending = tags.version if tags is not None else None
                if pending and tags is not None and tags.rotation_id == rotation_id:
                    state = self._state(meta, pending) if meta is not None else VersionState.PENDING
                    return StoredVersion(pending, rotation_id, staged.created_at(version), state)
        return None

    # -- ownership -------------------------------------------------------------------------------

    def _claim(self, owner: str) -> tuple[str | None, bool]:
        """Write the claim record (cas=0 on the staging path); the owner whose claim stands, and
        whether it is this very write's.

        None when the staging path exists without a readable claim record (a path rotator used
        before claims existed, or the record was purged): the ownership tags decide then.
        """
        record = {MANAGED_BY: MANAGED_BY_VALUE, OWNER: owner}
        # Should the write land, the staging path holds exactly that record as version 1 (cas=0:
        # it had no version), so the view starts empty and learns the write: write_pending
        # stages its value without reading the path back.
        self._cache.views[self.staging_path] = None
        try:
            self._write(self.staging_path, record, 0, "claim")
            return owner, True
        except _CasMismatch:
            pass  # the path was claimed first (by someone else, or by our own lost answer)
        except BaseException:
            self._cache.views.pop(self.staging_path, None)
            raise
        staged = self._metadata(self.staging_path)
        if staged is None:
            return None, False
        found = self._tags(staged, 1)
        return (found.owner if found is not None else None), False

    def ensure_owned(self, owner: str, adopt: bool) -> bool:
        self._forget_looks()
        self._cache.handover.drop(self.path)
        meta = self._metadata()
        found = meta.owner() if meta is not None else None
        if found == owner:
            self._owned_view = True
            return True
        if found is not None or (meta is not None and not adopt):
            raise StoreOwnershipError(self.location, found, owner)
        self._require_kv2()
        claimant, won = self._claim(owner)
        if claimant is not None and claimant != owner:
            raise StoreOwnershipError(self.location, claimant, owner)
        self._merge_custom({MANAGED_BY: MANAGED_BY_VALUE, OWNER: owner})
        if not won:
            # Decided by a record read back or by no record at all: metadata has no
            # check-and-set, so make sure no other writer's tag replaced ours meanwhile. A claim
            # this call wrote needs no look: every rotator claims before it tags, and the loser
            # of a claim never tags.
            after = self._metadata()
            final = after.owner() if after is not None else None
            if final != owner:
                raise StoreOwnershipError(self.location, final, owner)
        self._owned_view = True
        return meta is not None

    # -- Store -----------------------------------------------------------------------------------

    def current(self) -> StoredVersion | None:
        # Right after ensure_owned (the idle reconcile's pair) its read is as fresh as a new one.
        meta = self._metadata(carried=self._fresh_after_owned())
        if meta is None:
            return None
        vid = self._current_id(meta)
        if vid is None:
            return None
        number = self._newest(meta, vid, bare="any")
        if number is None:
            created = meta.created_at(int(vid)) if vid.isdigit() else None
            return StoredVersion(vid, None, created, VersionState.DESTROYED)
        tags = self._tags(meta, number)
        rotation_id = tags.rotation_id if tags is not None else None
        return StoredVersion(vid, rotation_id, meta.created_at(number), VersionState.CURRENT)

    def _fresh_after_owned(self) -> bool:
        fresh, self._owned_view = self._owned_view, False
        self._latest_look = None
        return fresh

    def _forget_looks(self) -> None:
        """A verb other than the one each look was taken for: neither answers for it."""
        self._owned_view = False
        self._latest_look = None

    def find_by_rotation(self, rotation_id: str) -> StoredVersion | None:
        self._forget_looks()
        return self._find(
            self._metadata(carried=True), self._metadata(self.staging_path, carried=True), rotation_id
        )

    def write_pending(self, value: SecretStr, rotation_id: str) -> StoredVersion:
        self._forget_looks()
        meta = self._metadata(carried=True)
        if meta is None or meta.owner() is None:
            self._require_kv2()  # not ours yet (a KV v1 mount never shows metadata at all)
        staged = self._metadata(self.staging_path, carried=True)
        if (existing := self._find(meta, staged, rotation_id)) is not None:
            return existing
        latest = meta.latest if meta is not None else 0
        vid = str(latest + 1)  # the number promote will publish it as (check-and-set `latest`)
        payload = {VALUE_KEY: value.get_secret_value(), ROTATION_ID: rotation_id, VERSION_KEY: vid}
        cas = staged.latest if staged is not None else 0
        try:
            written = self._write(self.staging_path, payload, cas, "write")
        except _CasMismatch:
            # Lost the race. Our own earlier attempt (answer lost, then retried)? Adopt it.
            found = self._find(self._metadata(), self._metadata(self.staging_path), rotation_id)
            if found is not None:
                return found
            raise StoreConflict(
                f"{self.location}: check-and-set failed on the staging path, written by someone else "
                f"(rotation {rotation_id})"
            ) from None
        # The id promises version number N+1 of the published path, taken from the view (fresh
        # at the rotation's start). No re-read here: a foreign write that took the number since
        # is met by promote, whose publish is a check-and-set on N (StoreRefused, rollback).
        self._cache.handover.put(self.path, vid, value)
        return StoredVersion(vid, rotation_id, _parse_time(written.get("created_time")), VersionState.PENDING)

    def promote(self, new_version: str, old_version: str | None) -> None:
        number = _version_number(new_version)
        if new_version == old_version:
            raise StoreRefused(f"{self.location}: cannot promote version {new_version} over itself")
        self._forget_looks()
        # The session's view, when it says "right after our write_pending" (latest is the number
        # before ours, ours not yet there): the check-and-set publish is what guards it, and a
        # conflict reads afresh. Anything else (a retry, a resume, no view) reads afresh now.
        meta = self._metadata(carried=True)
        if meta is None or meta.latest != number - 1 or self._newest(meta, new_version, bare="rotator"):
            meta = self._metadata()
        staged = self._metadata(self.staging_path, carried=True)
        records = self._staged(staged, new_version)
        if meta is None or self._newest(meta, new_version, bare="rotator") is None:
            if not records or staged is None:
                # The carried view of the staging path may predate a write we did not see.
                staged = self._metadata(self.staging_path)
                records = self._staged(staged, new_version)
            if not records or staged is None:
                raise StoreVersionNotFound(f"{self.location}: cannot promote version {new_version}: gone")
            try:
                self._publish(meta, staged, records[0], number)
            except StoreRefused:
                # Someone else's write took the number: this value never gets published under its
                # id. With an old version the engine's rollback destroys the staged copy
                # (mark_failed, after the target retired the credential, which reads it); without
                # one no mark_failed follows, so it goes now (a crash before that: the retried
                # promote finds nothing to publish and the rotation rolls back all the same).
                self._cache.handover.drop(self.path)
                if old_version is None:
                    self._destroy(self.staging_path, records)
                raise
        changes: dict[str, str | None] = {CURRENT_VERSION: new_version, PREVIOUS_VERSION: old_version}
        custom = meta.custom if meta is not None else {}
        if any(custom.get(k) != v for k, v in changes.items()):
            self._merge_custom(changes)
        # Published and pointed at: the staged copy has done its job (one copy fewer of a secret).
        self._destroy(self.staging_path, records)

    def _publish(self, meta: _Metadata | None, staged: _Metadata, record: int, number: int) -> None:
        """Write the staged value as version ``number`` of the published path (check-and-set)."""
        latest = meta.latest if meta is not None else 0
        taken = StoreRefused(
            f"{self.location}: cannot publish pending version {number}: the path is at version "
            f"{latest}, written by someone else since; the rotation must roll back and start again"
        )
        if latest != number - 1:
            raise taken
        handed = self._cache.handover.peek(self.path, str(number))
        tags = self._tags(staged, record) if handed is not None else None
        if handed is not None and tags is not None and tags.rotation_id is not None:
            # What this process staged a moment ago (write_pending): no need to read it back.
            value: str | None = handed.get_secret_value()
            rotation_id: str | None = tags.rotation_id
        else:
            data = self._fetch(staged, record) or {}
            value, rotation_id = _text(data, VALUE_KEY), _text(data, ROTATION_ID)
        if value is None or rotation_id is None:
            raise StoreVersionNotFound(f"{self.location}: pending version {number} is unreadable")
        self._cache.handover.put(self.path, str(number), SecretStr(value))
        if meta is not None:
            self._keep_protected_versions(meta)
        payload = {VALUE_KEY: value, ROTATION_ID: rotation_id, VERSION_KEY: str(number)}
        try:
            self._write(self.path, payload, latest, "publish")
        except _CasMismatch:
            fresh = self._metadata()
            if fresh is None or self._newest(fresh, str(number), bare="rotator") is None:
                raise taken from None
            # our own earlier attempt landed (its answer was lost)

    def read_value(self, version: str) -> SecretStr:
        _version_number(version)
        self._forget_looks()
        handed = self._cache.handover.take(self.path, version)
        if handed is not None:  # just written by this process: KV2Cache.handover
            return handed
        # The data read is real either way; only which KV version holds ``version`` comes from
        # the carried view, and a version destroyed since is looked up again afresh.
        data = self._value_data(version, carried=True)
        if data is None:
            data = self._value_data(version, carried=False)
        if data is None:
            raise StoreVersionNotFound(f"{self.location}: version {version} is destroyed or missing")
        value = _adoptable_value(data)
        if value is None:
            raise StoreError(f"{self.location}: version {version} has no '{VALUE_KEY}' key")
        SENSITIVE.add(value)  # whatever this process holds, its logs mask
        return SecretStr(value)

    def _value_data(self, version: str, *, carried: bool) -> Mapping[str, Any] | None:
        meta = self._metadata(carried=carried)
        data: Mapping[str, Any] | None = None
        if meta is not None and (number := self._newest(meta, version, bare="no")) is not None:
            if number == meta.latest:
                data = self._fetch_latest(meta)
            if data is None:
                data = self._fetch(meta, number)
        if data is None:
            staged = self._metadata(self.staging_path, carried=carried)
            records = self._staged(staged, version)
            if staged is not None and records:
                data = self._fetch(staged, records[0])
        if data is None and meta is not None and (number := self._newest(meta, version, bare="any")):
            data = self._fetch(meta, number)
        return data

    def revoke(self, version: str) -> None:
        _version_number(version)
        look = self._latest_look
        self._forget_looks()
        self._cache.handover.drop(self.path)
        meta = self._looked(look) or self._metadata()
        if meta is None:
            return
        if version == self._current_id(meta):
            raise StoreRefused(f"{self.location}: refusing to revoke version {version}: it is current")
        targets = self._versions_of(meta, version, bare="any")
        if meta.latest in targets:
            raise StoreRefused(
                f"{self.location}: refusing to revoke version {version}: readers of latest see it"
            )
        self._destroy(self.path, targets)
        staged = self._metadata(self.staging_path, carried=True)
        self._destroy(self.staging_path, self._staged(staged, version))
        if meta.custom.get(PREVIOUS_VERSION) == version:
            self._merge_custom({PREVIOUS_VERSION: None})

    def _looked(self, look: _LatestLook | None) -> _Metadata | None:
        """The published path as ``read_value``'s data read of latest just saw it, for the
        ``revoke`` that follows it (the engine's revoke step: read the new value, then revoke the
        old one); None when that answer cannot stand in for a fresh metadata read.

        It stands in when it proves the carried view complete: the latest version then is the
        view's latest (number and creation time, so no version was written since and the path
        was not deleted and written anew), its custom metadata was in the answer and names a
        current version, and the view holds no soft-deleted version (one undeleted since would
        be a live copy the view misses). Then the view's versions are every version there is;
        ones destroyed, deleted or purged since are destroyed again harmlessly (destroy is
        idempotent, also on a number that no longer exists), and the pointers are the fresh
        ones. Revoke's checks (never destroy what is current or what readers of latest get) run
        on that as they would on a metadata read taken a moment later.
        """
        meta = self._cache.views.get(self.path)
        if look is None or look.custom is None or meta is None or not look.custom.get(CURRENT_VERSION):
            return None
        if meta.stamp(meta.latest) != look.stamp:
            return None
        if any(info.get("deletion_time") and not info.get("destroyed") for info in meta.versions.values()):
            return None
        meta.custom = dict(look.custom)
        return meta

    def mark_failed(self, failed_version: str, restore_version: str | None) -> None:
        _version_number(failed_version)
        if restore_version == failed_version:
            raise StoreRefused(f"{self.location}: cannot restore version {failed_version} onto itself")
        self._forget_looks()
        self._cache.handover.drop(self.path)
        meta = self._metadata()
        if meta is None:
            return
        restore_from: int | None = None
        if restore_version is not None:
            _version_number(restore_version)
            restore_from = self._newest(meta, restore_version, bare="any")
            if restore_from is None:
                raise StoreVersionNotFound(
                    f"{self.location}: cannot restore version {restore_version}: destroyed or missing"
                )
        # 1. Pointers: rotator's own view of current is the restored version from here on.
        changes: dict[str, str | None] = {}
        if restore_version is not None:
            changes[CURRENT_VERSION] = restore_version
        elif meta.custom.get(CURRENT_VERSION) == failed_version:
            changes[CURRENT_VERSION] = None
        if meta.custom.get(PREVIOUS_VERSION) in (failed_version, restore_version):
            changes[PREVIOUS_VERSION] = None
        failed = [v for v in meta.failed() if v != failed_version] + [failed_version]
        changes[FAILED_VERSIONS] = ",".join(failed[-MAX_FAILED_VERSIONS:])
        if any(meta.custom.get(k) != v for k, v in changes.items()):
            self._merge_custom(changes)
        # 2. Readers of latest get the restored value back before the failed one disappears.
        if (
            restore_version is not None
            and restore_from is not None
            and not self._latest_is(meta, restore_version)
        ):
            self._republish(meta, restore_version, restore_from)
            meta = self._cache.views.get(self.path) or meta  # our write, or a re-read on conflict
        # 3. Destroy every copy of the failed version (never a foreign value that took its number).
        self._destroy(self.path, self._versions_of(meta, failed_version, bare="rotator"))
        staged = self._metadata(self.staging_path, carried=True)
        self._destroy(self.staging_path, self._staged(staged, failed_version))

    def _republish(self, meta: _Metadata, vid: str, source: int) -> None:
        """Write version ``source``'s value anew as the newest version, carrying id ``vid``.

        A destroyed version cannot be undeleted, and an older live one is not what readers of
        latest see: restoring means a new version holding the old value.
        """
        data = self._fetch(meta, source) or {}
        value = _adoptable_value(data)
        if value is None:
            raise StoreVersionNotFound(f"{self.location}: cannot restore version {vid}: unreadable")
        payload = {VALUE_KEY: value, VERSION_KEY: vid}
        if (rotation_id := _text(data, ROTATION_ID)) is not None:
            payload[ROTATION_ID] = rotation_id
        self._keep_protected_versions(meta)
        try:
            self._write(self.path, payload, meta.latest, "restore")
        except _CasMismatch:
            fresh = self._metadata()
            if fresh is None or not self._latest_is(fresh, vid):
                raise StoreConflict(
                    f"{self.location}: check-and-set failed while restoring version {vid}: "
                    "written by someone else; re-observe and retry"
                ) from None


__all__ = ["KV_DEFAULT_MAX_VERSIONS", "SCAN_LIMIT", "KV2Cache", "VaultKV2Store"]

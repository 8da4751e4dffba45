"""In-memory Store with the same semantics as the Vault KV v2 store, for unit tests (STYLE 7).

It models one KV path as the Vault store lays it out (``rotator.stores.vault.kv2``): numbered
versions (value + rotation id) in ``versions``, of which only *published* ones are what readers
of "latest" see (``published`` is the order of publications, ``latest_value()`` the newest); a
pending version is staged, not published, until ``promote``; a rollback publishes the restored
version again before the failed one is destroyed. Ownership is claimed atomically (``claim``,
the Vault store's check-and-set-0 claim record), tags are merged, and current/previous/failed
pointers kept. The same contract suite (``tests/integration/test_store_contract.py``) runs
against it, OpenBao and moto. Every verb holds one lock, so threads may share a fake the way two
policies share a path.

Test hooks, none of which the engine uses:

- ``seed(value)`` writes a pre-existing foreign value (no rotation id, no tags);
- ``foreign_write(value)`` publishes a version as someone else would;
- ``before_next_write(callback)`` runs ``callback`` between write_pending's read and its
  check-and-set (to stage a race);
- ``before_next_claim(callback)`` runs ``callback`` between ensure_owned's ownership read and its
  claim (to stage two policies claiming one new path in the same instant);
- ``fail_next(n)`` makes the next ``n`` calls raise StoreUnavailable; ``available = False``
  makes every call fail until set back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pydantic import SecretStr

from rotator.models import utcnow
from rotator.stores.base import (
    MANAGED_BY,
    MANAGED_BY_VALUE,
    MAX_FAILED_VERSIONS,
    OWNER,
    OnRequest,
    StoredVersion,
    VersionState,
    no_metrics,
)
from rotator.stores.errors import (
    StoreConflict,
    StoreOwnershipError,
    StoreRefused,
    StoreUnavailable,
    StoreVersionNotFound,
)


@dataclass
class _Version:
    value: str | None  # None once destroyed
    rotation_id: str | None
    created_at: datetime


class FakeStore:
    kind = "fake"

    def __init__(
        self,
        path: str = "fake/secret",
        on_request: OnRequest = no_metrics,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.path = path
        self._on_request = on_request
        self._clock = clock
        self.versions: dict[int, _Version] = {}
        self.published: list[int] = []
        """Version numbers in the order readers of "latest" saw them (a restore appears again)."""
        self.tags: dict[str, str] | None = None  # None: the path does not exist
        self.claim: str | None = None
        """The owner whose atomic claim stands (the Vault store's claim record)."""
        self.current_pointer: str | None = None
        self.previous_pointer: str | None = None
        self.failed: list[str] = []
        self.available = True
        self._failures = 0
        self._before_write: Callable[[], None] | None = None
        self._before_claim: Callable[[], None] | None = None
        self._lock = threading.RLock()
        self.max_versions = 0
        """Like KV v2: versions kept (0 = the default of 10); the oldest beyond it are purged."""

    def __repr__(self) -> str:
        return f"FakeStore({self.path!r})"

    @property
    def location(self) -> str:
        return f"fake {self.path}"

    # -- test hooks -----------------------------------------------------------------------------

    def fail_next(self, calls: int) -> None:
        """The next ``calls`` Store calls raise StoreUnavailable."""
        self._failures += calls

    def before_next_write(self, callback: Callable[[], None]) -> None:
        self._before_write = callback

    def before_next_claim(self, callback: Callable[[], None]) -> None:
        self._before_claim = callback

    def seed(self, value: str) -> str:
        """A value that existed before rotator: no rotation id, no tags. Returns its version."""
        return self.foreign_write(value)

    def foreign_write(self, value: str) -> str:
        """Publish a new version as a foreign writer would (no rotation id)."""
        with self._lock:
            number = self.latest + 1
            self._add(number, _Version(value, None, self._clock()))
            self.published.append(number)
            return str(number)

    def latest_value(self) -> str | None:
        """What a reader of "latest" gets: the newest published value (None: nothing, or destroyed)."""
        with self._lock:
            if not self.published:
                return None
            found = self.versions.get(self.published[-1])
            return found.value if found is not None else None

    def _add(self, number: int, version: _Version) -> None:
        self.versions[number] = version
        if self.tags is None:
            self.tags = {}
        while len(self.versions) > (self.max_versions or 10):
            del self.versions[min(self.versions)]

    @property
    def latest(self) -> int:
        return max(self.versions, default=0)

    # -- plumbing -------------------------------------------------------------------------------

    def _enter(self, operation: str) -> None:
        if not self.available or self._failures > 0:
            self._failures = max(0, self._failures - 1)
            self._on_request(operation, "error")
            raise StoreUnavailable(f"{self.location}: {operation} failed: injected fault")
        self._on_request(operation, "ok")

    def _number(self, version: str) -> int:
        if not version.isdigit() or int(version) < 1:
            raise StoreVersionNotFound(f"not a version number: {version!r}")
        return int(version)

    def _alive(self, number: int) -> bool:
        found = self.versions.get(number)
        return found is not None and found.value is not None

    def _current_number(self) -> int | None:
        if self.current_pointer is not None:
            return int(self.current_pointer)
        for number in reversed(self.published):
            version = self.versions.get(number)
            if version is None or version.value is None or version.rotation_id is not None:
                continue
            return number
        return None

    def _state(self, number: int) -> VersionState:
        if str(number) in self.failed:
            return VersionState.FAILED
        if not self._alive(number):
            return VersionState.DESTROYED
        if number == self._current_number():
            return VersionState.CURRENT
        if self.previous_pointer == str(number):
            return VersionState.PREVIOUS
        return VersionState.PENDING

    def _stored(self, number: int) -> StoredVersion:
        version = self.versions[number]
        return StoredVersion(str(number), version.rotation_id, version.created_at, self._state(number))

    def _find(self, rotation_id: str) -> StoredVersion | None:
        for number in sorted(self.versions, reverse=True):
            if self._alive(number) and self.versions[number].rotation_id == rotation_id:
                return self._stored(number)
        return None

    def _owner(self) -> str | None:
        if self.tags is None or self.tags.get(MANAGED_BY) != MANAGED_BY_VALUE:
            return None
        return self.tags.get(OWNER) or None

    # -- Store ----------------------------------------------------------------------------------

    def ensure_owned(self, owner: str, adopt: bool) -> bool:
        with self._lock:
            self._enter("ensure_owned")
            found, existed = self._owner(), self.tags is not None
            if found == owner:
                return True
            if found is not None or (existed and not adopt):
                raise StoreOwnershipError(self.location, found, owner)
        if self._before_claim is not None:
            hook, self._before_claim = self._before_claim, None
            hook()
        with self._lock:
            if self.claim is None:
                self.claim = owner  # the atomic create: exactly one claimant lands
            if self.claim != owner:
                raise StoreOwnershipError(self.location, self.claim, owner)
            self.tags = {**(self.tags or {}), MANAGED_BY: MANAGED_BY_VALUE, OWNER: owner}  # merged
            return existed

    def current(self) -> StoredVersion | None:
        with self._lock:
            self._enter("current")
            number = self._current_number()
            if number is None:
                return None
            version = self.versions.get(number)
            if version is None:
                return None
            state = VersionState.CURRENT if version.value is not None else VersionState.DESTROYED
            return StoredVersion(str(number), version.rotation_id, version.created_at, state)

    def find_by_rotation(self, rotation_id: str) -> StoredVersion | None:
        with self._lock:
            self._enter("find_by_rotation")
            return self._find(rotation_id)

    def write_pending(self, value: SecretStr, rotation_id: str) -> StoredVersion:
        with self._lock:
            self._enter("write")
            existing = self._find(rotation_id)
            if existing is not None:
                return existing
            protected = [v for v in (self._current_number(), self.previous_pointer) if v is not None]
            if protected:
                needed = self.latest + 1 - min(int(v) for v in protected) + 1
                self.max_versions = max(self.max_versions or 10, needed)
            cas = self.latest
            if self._before_write is not None:
                hook, self._before_write = self._before_write, None
                hook()
            if self.latest != cas:
                raise StoreConflict(
                    f"{self.location}: check-and-set failed, expected latest version {cas} but found "
                    f"{self.latest} written by someone else (rotation {rotation_id})"
                )
            number = cas + 1
            self._add(number, _Version(value.get_secret_value(), rotation_id, self._clock()))  # staged
            return self._stored(number)

    def promote(self, new_version: str, old_version: str | None) -> None:
        with self._lock:
            self._enter("promote")
            number = self._number(new_version)
            if not self._alive(number):
                raise StoreVersionNotFound(f"{self.location}: cannot promote version {new_version}: gone")
            if new_version == old_version:
                raise StoreRefused(f"{self.location}: cannot promote version {new_version} over itself")
            if number not in self.published:
                if max(self.published, default=0) > number:
                    raise StoreRefused(
                        f"{self.location}: cannot publish pending version {new_version}: the path moved "
                        "on, written by someone else since"
                    )
                self.published.append(number)  # readers of latest see it from now on
            self.current_pointer = new_version
            self.previous_pointer = old_version

    def read_value(self, version: str) -> SecretStr:
        with self._lock:
            self._enter("read_version")
            found = self.versions.get(self._number(version))
            if found is None or found.value is None:
                raise StoreVersionNotFound(f"{self.location}: version {version} is destroyed or missing")
            return SecretStr(found.value)

    def revoke(self, version: str) -> None:
        with self._lock:
            self._enter("revoke")
            number = self._number(version)
            if number == self._current_number():
                raise StoreRefused(f"{self.location}: refusing to revoke version {version}: it is current")
            if self.published and self.published[-1] == number and self._alive(number):
                raise StoreRefused(
                    f"{self.location}: refusing to revoke version {version}: readers of latest see it"
                )
            if number in self.versions:
                self.versions[number].value = None
            if self.previous_pointer == version:
                self.previous_pointer = None

    def mark_failed(self, failed_version: str, restore_version: str | None) -> None:
        with self._lock:
            self._enter("mark_failed")
            number = self._number(failed_version)
            if restore_version == failed_version:
                raise StoreRefused(f"{self.location}: cannot restore version {failed_version} onto itself")
            if restore_version is not None and not self._alive(self._number(restore_version)):
                raise StoreVersionNotFound(
                    f"{self.location}: cannot restore version {restore_version}: destroyed or missing"
                )
            if restore_version is not None:
                self.current_pointer = restore_version
            elif self.current_pointer == failed_version:
                self.current_pointer = None
            if self.previous_pointer in (failed_version, restore_version):
                self.previous_pointer = None
            self.failed = ([v for v in self.failed if v != failed_version] + [failed_version])[
                -MAX_FAILED_VERSIONS:
            ]
            if restore_version is not None and (
                not self.published or self.published[-1] != int(restore_version)
            ):
                self.published.append(int(restore_version))  # the old value is latest again
            if number in self.versions:
                self.versions[number].value = None


__all__ = ["FakeStore"]

"""The Store protocol: where a credential's source of truth lives (DESIGN §1-2, STYLE 7).

A store holds numbered versions of one secret value plus two pointers, *current* and
*previous*. A rotation writes a *pending* version keyed by its rotation id (step 1), promotes it
(step 2: new current, old previous), and finally revokes the old one (step 6) or, on rollback,
marks the new one failed and points current back at the old one.

Every verb is safe to repeat (STYLE 3): the engine may crash and run any step again.

Others read the store too (External Secrets, the Vault Secrets Operator, Vault Agent, AWS SDKs
read "latest" / AWSCURRENT, never a version pointer). So at every instant "latest" is a credential
that works: a pending version is not visible there before ``promote``, and ``mark_failed`` makes
the restored version latest again before the failed one is destroyed. Ownership is claimed
atomically (of two policies claiming one new path in the same instant exactly one wins), and tag
updates merge rather than overwrite metadata rotator does not own.
Implementations take an injected client and an ``on_request(operation, result)`` callback for
the ``store_requests_total`` metric; they never build clients themselves (STYLE 2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final, Protocol, runtime_checkable

from pydantic import SecretStr

# The tag keys are shared vocabulary (rotator.models.keys); re-exported under the names the
# store implementations use.
from rotator.models.keys import MANAGED_BY as MANAGED_BY_VALUE
from rotator.models.keys import ROTATION_ID
from rotator.models.keys import STORE_CURRENT_VERSION as CURRENT_VERSION
from rotator.models.keys import STORE_FAILED_VERSIONS as FAILED_VERSIONS
from rotator.models.keys import STORE_MANAGED_BY as MANAGED_BY
from rotator.models.keys import STORE_OWNER as OWNER
from rotator.models.keys import STORE_PREVIOUS_VERSION as PREVIOUS_VERSION
from rotator.models.keys import STORE_VALUE_KEY as VALUE_KEY

MAX_FAILED_VERSIONS: Final = 10
"""How many failed versions the path's metadata remembers (bounded: metadata values are small)."""

OnRequest = Callable[[str, str], None]
"""``on_request(operation, result)`` with result ``"ok"`` or ``"error"``; for bounded metrics."""


def no_metrics(operation: str, result: str) -> None:
    """Default ``on_request``: count nothing."""


class VersionState(StrEnum):
    PENDING = "pending"
    CURRENT = "current"
    PREVIOUS = "previous"
    FAILED = "failed"
    DESTROYED = "destroyed"


@dataclass(frozen=True)
class StoredVersion:
    """A version of the secret, by reference only: never carries the value."""

    version: str
    rotation_id: str | None
    created_at: datetime | None
    state: VersionState


@runtime_checkable
class Store(Protocol):
    kind: str
    """``"vault"`` | ``"aws"`` | ``"fake"``: a bounded metric label."""

    def ensure_owned(self, owner: str, adopt: bool) -> bool:
        """Claim the path atomically and tag it as rotator's for ``owner``; True if it existed before.

        Raises StoreOwnershipError if the path exists, is not tagged by rotator for this owner,
        and ``adopt`` is False; if it is tagged or claimed for another owner (adopt or not); and
        for the loser of two claims in the same instant. Vault raises StoreMountError when the
        mount is not KV version 2 (checked before the first write).
        """
        ...

    def current(self) -> StoredVersion | None:
        """The current version, or None when the store holds no usable value yet.

        A pre-existing value written by someone else (no rotation id) counts as current.
        """
        ...

    def find_by_rotation(self, rotation_id: str) -> StoredVersion | None:
        """The version written for ``rotation_id``, if any (crash recovery for step 1)."""
        ...

    def write_pending(self, value: SecretStr, rotation_id: str) -> StoredVersion:
        """Write ``value`` as a new pending version; idempotent by ``rotation_id``.

        If a version for this rotation id exists it is returned and nothing is written. The
        write is checked-and-set against the latest version; a foreign write in between raises
        StoreConflict here, or (Vault KV v2, whose publish is itself a check-and-set on the
        number promised) StoreRefused at ``promote``, which the engine rolls back. Readers of
        "latest" do not see a pending value.
        """
        ...

    def promote(self, new_version: str, old_version: str | None) -> None:
        """Make ``new_version`` current (and what readers of "latest" get) and ``old_version``
        previous; idempotent."""
        ...

    def read_value(self, version: str) -> SecretStr:
        """The value of ``version``; StoreVersionNotFound if it is gone."""
        ...

    def revoke(self, version: str) -> None:
        """Destroy ``version``. Already destroyed or not found is success; the current version
        is refused (StoreRefused)."""
        ...

    def mark_failed(self, failed_version: str, restore_version: str | None) -> None:
        """Rollback: point current back at ``restore_version`` and make it what readers of
        "latest" get, then destroy ``failed_version`` and remember it as failed; idempotent."""
        ...


__all__ = [
    "CURRENT_VERSION",
    "FAILED_VERSIONS",
    "MANAGED_BY",
    "MANAGED_BY_VALUE",
    "MAX_FAILED_VERSIONS",
    "OWNER",
    "PREVIOUS_VERSION",
    "ROTATION_ID",
    "VALUE_KEY",
    "OnRequest",
    "Store",
    "StoredVersion",
    "VersionState",
    "no_metrics",
]

"""Store errors, split by what the engine should do about them (STYLE 9: retry by raising).

- ``StoreUnavailable``: temporary (connection refused, timeout, 5xx, 429). Retry the same step
  with backoff; nothing was decided.
- ``StoreConflict``: someone else changed the path between our read and our write (a
  check-and-set failure not explained by our own earlier write). Re-observe and retry.
- ``StoreOwnershipError``: permanent until a human acts: the path exists and is not rotator's
  for this policy (and adoption was not asked for). Named in a condition.
- ``StoreRefused``: a request that would break an invariant (revoke the current version, roll
  back onto the failed version). Permanent: it means a logic error upstream, never retried.
- ``StoreVersionNotFound``: the version asked for is gone (destroyed, deleted, never existed).
- ``StoreMountError``: the Vault mount is not a KV version 2 engine (KV v1, another engine, or
  no mount there): permanent, nothing was written. Named in a condition.

Messages name paths, versions and owners, never a secret value.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every store failure. Permanent unless a subclass says otherwise."""


class StoreUnavailable(StoreError):
    """Temporary: the store did not answer or answered 5xx/429; retry with backoff."""


class StoreConflict(StoreError):
    """A concurrent foreign write won the check-and-set; re-observe and retry."""


class StoreOwnershipError(StoreError):
    """The path exists and is not tagged as rotator's for this owner."""

    def __init__(self, path: str, found_owner: str | None, owner: str) -> None:
        self.path = path
        self.found_owner = found_owner
        self.owner = owner
        if found_owner:
            # Another policy's path: adopting it would make two policies rotate one credential.
            advice = "another RotationPolicy owns it; point this policy at its own path"
        else:
            advice = "set spec.adopt: true to take it over"
        found = f"owner tag {found_owner!r}" if found_owner else "no rotator owner tag"
        super().__init__(f"{path} exists with {found}, not owned by rotator policy {owner!r}; {advice}")


class StoreAuthError(StoreError):
    """Vault refused our identity (login refused, token expired or lacking a policy)."""


class StoreRefused(StoreError):
    """The operation would break a store invariant (e.g. revoking the current version)."""


class StoreVersionNotFound(StoreError):
    """The requested version does not exist or was destroyed."""


class StoreMountError(StoreError):
    """The mount is not a KV version 2 engine; checked before the first write to a path."""


__all__ = [
    "StoreAuthError",
    "StoreConflict",
    "StoreError",
    "StoreMountError",
    "StoreOwnershipError",
    "StoreRefused",
    "StoreUnavailable",
    "StoreVersionNotFound",
]

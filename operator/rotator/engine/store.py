"""Opening a policy's store for one reconcile: resolve the reference under the tenancy rules, pin
it to a running rotation's location, log in. Records the store kind in status on the way."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from rotator.engine.deps import Deps
from rotator.engine.draft import Draft
from rotator.models import RotationPolicySpec
from rotator.stores.base import Store
from rotator.tenancy.resolve import ResolvedStore, pin


@dataclass
class OpenedStore:
    """The resolved location, and the store opened (logged in) only when a reconcile first
    touches it: an idle reconcile with nothing to do costs no login."""

    resolved: ResolvedStore
    _open: Callable[[], Store] = field(repr=False)

    @cached_property
    def store(self) -> Store:
        return self._open()

    @property
    def location(self) -> dict[str, str]:
        return self.resolved.location()


def open_store(
    draft: Draft, spec: RotationPolicySpec, deps: Deps, pinned: Mapping[str, str] | None = None
) -> OpenedStore:
    resolved = deps.resolve_store(draft.ref, spec)
    if pinned is not None:
        resolved = pin(resolved, pinned, draft.rotation.id)
    draft.set(store_kind=str(resolved.kind))
    return OpenedStore(resolved, lambda: deps.open_store(draft.ref, resolved))

"""Opening a policy's store for one reconcile: resolve the reference under the tenancy rules, pin
it to a running rotation's location, log in. Records the store kind in status on the way."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rotator.engine.deps import Deps
from rotator.engine.draft import Draft
from rotator.models import RotationPolicySpec
from rotator.stores.base import Store
from rotator.tenancy.resolve import ResolvedStore, pin


@dataclass(frozen=True)
class OpenedStore:
    store: Store
    resolved: ResolvedStore

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
    return OpenedStore(deps.open_store(draft.ref, resolved), resolved)

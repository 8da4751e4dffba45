"""What rotator asks of Kopf: on-event handlers only, so its no-op diff base loses nothing."""

from __future__ import annotations

from typing import Any

import kopf

from rotator import handlers
from rotator import handlers as handlers_module

#: The registry rotator.handlers registered into (Kopf's default when it was imported, above):
#: taken now, at collection, because kopf.testing.KopfRunner (tests/sandbox/test_kube_kopf.py)
#: makes its own registry the process's default while a test on the same worker runs it.
REGISTRY = kopf.get_default_registry()


def test_only_event_handlers_so_no_diff_base_is_needed() -> None:
    """handlers.NoDiffBase drops Kopf's per-event "last handled" snapshot. That is right only
    while no handler needs a diff: an on.create/update/delete/field/resume handler (changing)
    or a daemon/timer (spawning) would silently never fire."""
    registry = REGISTRY

    def ours(handlers: list[Any]) -> list[Any]:  # other test modules register into it too
        return [h for h in handlers if getattr(h.fn, "__module__", "") == handlers_module.__name__]

    assert ours(registry._changing.get_all_handlers()) == []
    assert ours(registry._spawning.get_all_handlers()) == []
    assert len(ours(registry._watching.get_all_handlers())) >= 3  # Secrets, workloads, stores


def test_no_diff_base_builds_nothing_and_remembers_nothing() -> None:
    storage = handlers.NoDiffBase()
    body = kopf.Body({"metadata": {"name": "p", "annotations": {"a": "b"}}, "spec": {"x": 1}})
    assert storage.build(body=body) == {}
    assert storage.fetch(body=body) is None
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=kopf.BodyEssence())
    assert not patch

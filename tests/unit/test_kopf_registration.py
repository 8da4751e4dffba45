"""What rotator asks of Kopf: on-event handlers only, so its no-op diff base loses nothing."""

from __future__ import annotations

import kopf

from rotator import handlers


def test_only_event_handlers_so_no_diff_base_is_needed() -> None:
    """handlers.NoDiffBase drops Kopf's per-event "last handled" snapshot. That is right only
    while no handler needs a diff: an on.create/update/delete/field/resume handler (changing)
    or a daemon/timer (spawning) would silently never fire."""
    registry = kopf.get_default_registry()
    assert registry._changing.get_all_handlers() == []
    assert registry._spawning.get_all_handlers() == []
    assert len(registry._watching.get_all_handlers()) >= 3  # policies, Secrets, stores at least


def test_no_diff_base_builds_nothing_and_remembers_nothing() -> None:
    storage = handlers.NoDiffBase()
    body = kopf.Body({"metadata": {"name": "p", "annotations": {"a": "b"}}, "spec": {"x": 1}})
    assert storage.build(body=body) == {}
    assert storage.fetch(body=body) is None
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=kopf.BodyEssence())
    assert not patch

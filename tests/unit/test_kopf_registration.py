"""What rotator asks of Kopf: the process's frame and probes, no resource handler (every watch
is a ``rotator.informer.Informer``), so Kopf keeps no state on any object and needs no grant to
watch one."""

from __future__ import annotations

from typing import Any

import kopf

from rotator import handlers as handlers_module

#: The registry rotator.handlers registered into (Kopf's default when it was imported, above):
#: taken now, at collection, because kopf.testing.KopfRunner (tests/sandbox/test_kube_kopf.py)
#: makes its own registry the process's default while a test on the same worker runs it.
REGISTRY = kopf.get_default_registry()


def _ours(handlers: list[Any]) -> list[Any]:  # other test modules register into it too
    return [h for h in handlers if getattr(h.fn, "__module__", "") == handlers_module.__name__]


def test_no_resource_handler_only_activities() -> None:
    """A resource handler would make Kopf watch (with its own client, outside the request
    counts and the cache), keep annotations or a diff base on objects, or, for a daemon or a
    timer, a finalizer that blocks deletion while the operator is down."""
    registry = REGISTRY
    assert _ours(registry._changing.get_all_handlers()) == []
    assert _ours(registry._spawning.get_all_handlers()) == []
    assert _ours(registry._watching.get_all_handlers()) == []
    assert _ours(registry._webhooks.get_all_handlers()) == []
    activities = {h.fn.__name__ for h in _ours(registry._activities.get_all_handlers())}
    assert {"configure", "login", "start_watches", "stop_loops"} <= activities

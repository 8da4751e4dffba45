"""The list-then-watch loop (``rotator.informer``) against the emulator: what it delivers at
start, as things change, after the stream ends or breaks, after the server's history was
compacted while it was away, and when the list is refused. Secrets stand in for any collection
(the operator watches RotationPolicies with it)."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from rotator.informer import Informer
from rotator.kube import Kube, secret_path
from rotator.kube_connection import KubeConnection
from rotator.sandbox.kube_emulator import Fault
from rotator.sandbox.kube_server import KubeServer

NS = "default"


class Seen:
    """What an informer delivered, (type, name, resourceVersion), waited on by the test."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []
        self._changed = threading.Condition()

    def __call__(self, kind: str, obj: dict[str, object]) -> None:
        meta = obj["metadata"]
        assert isinstance(meta, dict)
        with self._changed:
            self.events.append((kind, str(meta["name"]), str(meta.get("resourceVersion") or "")))
            self._changed.notify_all()

    def until(self, check: Callable[[list[tuple[str, str, str]]], bool], timeout: float = 10.0) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: check(self.events), timeout), self.events

    def kinds_of(self, name: str) -> list[str]:
        return [kind for kind, seen, _ in self.events if seen == name]


@pytest.fixture
def kube(kube_client: KubeConnection) -> Kube:
    return Kube(kube_client)


@pytest.fixture
def informer(kube: Kube) -> Iterator[Callable[..., tuple[Informer, Seen]]]:
    started: list[Informer] = []

    def start(**kwargs: object) -> tuple[Informer, Seen]:
        seen = Seen()
        informer = Informer(kube, secret_path(NS), seen, name="secrets", **kwargs)  # type: ignore[arg-type]
        informer.start()
        started.append(informer)
        return informer, seen

    yield start
    for informer in started:
        informer.stop()


def _until_watching(kube_server: KubeServer) -> None:
    """Until the informer's watch is open on the server (its list came first)."""
    deadline = time.monotonic() + 10
    while not kube_server.call(lambda emulator: len(emulator.store._watchers)):
        assert time.monotonic() < deadline, "the informer never opened its watch"
        time.sleep(0.01)


def _secret(kube: Kube, name: str) -> dict[str, object]:
    return kube.create_secret(NS, {"metadata": {"name": name}, "data": {}})


def test_existing_objects_then_every_change_in_order(
    kube: Kube, informer: Callable[..., tuple[Informer, Seen]]
) -> None:
    _secret(kube, "before-1")
    _secret(kube, "before-2")
    watching, seen = informer(page_size=1)  # the list comes in pages
    assert watching.synced.wait(10)
    seen.until(lambda events: len(events) >= 2)
    assert sorted((kind, name) for kind, name, _ in seen.events) == [
        ("ADDED", "before-1"),
        ("ADDED", "before-2"),
    ]
    created = _secret(kube, "after")
    kube.merge_patch(secret_path(NS, "after"), {"metadata": {"labels": {"x": "1"}}})
    kube.request("DELETE", secret_path(NS, "before-1"))
    seen.until(lambda events: len(events) >= 5)
    assert [(kind, name) for kind, name, _ in seen.events[2:]] == [
        ("ADDED", "after"),
        ("MODIFIED", "after"),
        ("DELETED", "before-1"),
    ]
    assert seen.events[2][2] == created["metadata"]["resourceVersion"]  # type: ignore[index]


def test_a_watch_the_server_ends_is_resumed_without_a_relist(
    kube: Kube, kube_server: KubeServer, informer: Callable[..., tuple[Informer, Seen]]
) -> None:
    _secret(kube, "a")
    watching, seen = informer()
    assert watching.synced.wait(10)
    seen.until(lambda events: len(events) == 1)
    lists_before = kube_server.call(lambda emulator: emulator.request_count)
    for round_ in range(3):
        _until_watching(kube_server)
        assert kube_server.call(lambda emulator: emulator.store.drop_watches()) == 1
        _secret(kube, f"during-{round_}")
        seen.until(lambda events, round_=round_: any(name == f"during-{round_}" for _, name, _ in events))
    assert seen.kinds_of("a") == ["ADDED"], "nothing delivered twice: it resumed, not re-listed"
    assert [name for _, name, _ in seen.events] == ["a", "during-0", "during-1", "during-2"]
    assert kube_server.call(lambda emulator: emulator.request_count) - lists_before < 20


def test_after_the_history_was_compacted_it_lists_again_and_names_what_went(
    kube: Kube, kube_server: KubeServer, informer: Callable[..., tuple[Informer, Seen]]
) -> None:
    _secret(kube, "stays")
    _secret(kube, "goes")
    _secret(kube, "changes")
    watching, seen = informer(backoff=(0.05,))
    assert watching.synced.wait(10)
    seen.until(lambda events: len(events) == 3)
    # Its watch down (the server refusing it again), changes, then the history forgotten
    # (etcd compaction): resuming from where it was is no longer possible.
    _until_watching(kube_server)
    kube_server.add_fault(Fault(re.compile(r"/secrets$"), "GET", 503, "ServiceUnavailable", times=None))
    assert kube_server.call(lambda emulator: emulator.store.drop_watches()) == 1
    kube.request("DELETE", secret_path(NS, "goes"))
    kube.merge_patch(secret_path(NS, "changes"), {"metadata": {"labels": {"x": "1"}}})
    _secret(kube, "new")
    kube_server.call(lambda emulator: emulator.store.compact())
    assert len(seen.events) == 3, "nothing came while the watch was down"
    kube_server.clear_faults()
    seen.until(lambda events: {"goes", "new"} <= {name for kind, name, _ in events[3:]} and len(events) >= 6)
    later = {(kind, name) for kind, name, _ in seen.events[3:]}
    assert ("DELETED", "goes") in later
    assert ("MODIFIED", "changes") in later
    assert ("ADDED", "new") in later
    assert seen.kinds_of("stays") == ["ADDED"], "an object that did not change is not delivered again"


def test_a_refused_list_is_logged_once_and_tried_again(
    kube: Kube,
    kube_server: KubeServer,
    informer: Callable[..., tuple[Informer, Seen]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _secret(kube, "a")
    kube_server.add_fault(
        Fault(re.compile(r"/secrets$"), "GET", 403, "Forbidden", "no list for you", times=3)
    )
    with caplog.at_level(logging.WARNING, logger="rotator.informer"):
        watching, seen = informer(backoff=(0.05,))
        assert watching.synced.wait(10)
        seen.until(lambda events: len(events) == 1)
    warnings = [r.getMessage() for r in caplog.records if r.name == "rotator.informer"]
    assert warnings == ["watching secrets failed (403 Forbidden: no list for you); retrying in 0.1s"]


def test_its_health_is_told_at_each_change_and_a_silent_watch_counts_as_healthy(
    kube: Kube, kube_server: KubeServer, informer: Callable[..., tuple[Informer, Seen]]
) -> None:
    """``on_health`` feeds ``rotator_watch_healthy``: False at a streak's first failure, True once
    a list or a watch is accepted (a quiet collection sends no event for minutes: the watch
    being open is what counts), and nothing in between."""
    told: list[tuple[str, bool]] = []
    _secret(kube, "a")
    kube_server.add_fault(Fault(re.compile(r"/secrets$"), "GET", 403, "Forbidden", "no", times=3))
    watching, _ = informer(backoff=(0.05,), on_health=lambda name, healthy: told.append((name, healthy)))
    assert watching.synced.wait(10)
    assert told == [("secrets", False), ("secrets", True)], "three refusals, one streak"
    _until_watching(kube_server)
    kube_server.add_fault(Fault(re.compile(r"/secrets$"), "GET", 503, "ServiceUnavailable", times=2))
    assert kube_server.call(lambda emulator: emulator.store.drop_watches()) == 1
    deadline = time.monotonic() + 10
    while len(told) < 4:
        assert time.monotonic() < deadline, told
        time.sleep(0.01)
    _until_watching(kube_server)  # open again, and silent: nothing has changed
    assert told[2:] == [("secrets", False), ("secrets", True)]


def test_stop_ends_a_watch_waiting_for_events_at_once(
    kube: Kube, informer: Callable[..., tuple[Informer, Seen]]
) -> None:
    watching, _ = informer()
    assert watching.synced.wait(10)
    time.sleep(0.2)  # in the watch by now, the server silent
    stopped = threading.Thread(target=watching.stop, kwargs={"timeout": 30.0})
    stopped.start()
    stopped.join(10)
    assert not stopped.is_alive(), "stop() returned"
    assert not watching._thread.is_alive(), "and the informer's thread ended"  # type: ignore[union-attr]
    assert not watching._streams, "its watch connection is closed"


def test_stopping_one_informer_leaves_another_on_the_same_client_watching(
    kube: Kube, informer: Callable[..., tuple[Informer, Seen]], kube_server: KubeServer
) -> None:
    stopped, _ = informer()
    going, seen = informer()
    assert stopped.synced.wait(10)
    assert going.synced.wait(10)
    deadline = time.monotonic() + 10
    while kube_server.call(lambda emulator: len(emulator.store._watchers)) < 2:
        assert time.monotonic() < deadline, "both watches open"
        time.sleep(0.01)
    watch_requests = _watches(kube_server)
    stopped.stop()
    _secret(kube, "after-stop")
    seen.until(lambda events: ("ADDED", "after-stop") in [(kind, name) for kind, name, _ in events])
    assert _watches(kube_server) == watch_requests, "the other watch went on: never reopened"


def _watches(kube_server: KubeServer) -> int:
    return int(kube_server.call(lambda emulator: sum(
        1 for request in emulator.history if request.params.get("watch") == "true"
    )))  # fmt: skip


def test_a_label_selected_informer_sees_only_what_it_selects_and_a_label_removed_as_deleted(
    kube: Kube, informer: Callable[..., tuple[Informer, Seen]]
) -> None:
    kube.create_secret(NS, {"metadata": {"name": "foreign"}, "data": {}})
    kube.create_secret(NS, {"metadata": {"name": "ours", "labels": {"owned": "yes"}}, "data": {}})
    watching, seen = informer(label_selector="owned=yes")
    assert watching.synced.wait(10)
    seen.until(lambda events: len(events) == 1)
    kube.merge_patch(secret_path(NS, "foreign"), {"metadata": {"annotations": {"touched": "1"}}})
    kube.merge_patch(secret_path(NS, "ours"), {"metadata": {"labels": {"owned": None}}})
    seen.until(lambda events: len(events) == 2)
    time.sleep(0.2)  # nothing about the foreign one comes later either
    assert [(kind, name) for kind, name, _ in seen.events] == [("ADDED", "ours"), ("DELETED", "ours")]


def test_a_watch_refused_with_http_410_lists_again(
    kube_client: KubeConnection, kube_server: KubeServer
) -> None:
    """Kube sends an expired resourceVersion as an ERROR event; a server (or proxy) answering
    the watch itself with 410 means the same, and retrying the same resourceVersion never ends."""
    sent: list[str] = []
    kube = Kube(kube_client, on_request=lambda verb, resource: sent.append(verb))
    seen = Seen()
    watching = Informer(kube, secret_path(NS), seen, name="secrets", backoff=(0.05,))
    watching.start()
    try:
        assert watching.synced.wait(10)
        _until_watching(kube_server)
        assert sent == ["list", "watch"]
        kube_server.add_fault(Fault(re.compile(r"/secrets$"), "GET", 410, "Expired", times=1))
        kube_server.call(lambda emulator: emulator.store.drop_watches())
        _secret(kube, "after")
        seen.until(lambda events: [name for _, name, _ in events] == ["after"])
    finally:
        watching.stop()
    informer_requests = [verb for verb in sent if verb != "create"]
    assert informer_requests[:4] == ["list", "watch", "watch", "list"], "refused with 410: listed again"

"""Kopf runs against the emulator as against a cluster (DESIGN §5).

A real Kopf operator (in-process, via ``KopfRunner``; logged in through a kubeconfig that points
at the emulator) must see its create, update, field-change, timer and delete handlers fire, put
and remove its finalizer, and post Events that land as core v1 events.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import kopf
import pytest
from kopf.testing import KopfRunner

from rotator.sandbox.kube_emulator import KubeEmulator
from rotator.sandbox.kube_server import KubeServer
from tests.fixtures.kube import KubeHTTP, wait_until
from tests.sandbox.test_kube_emulator import WIDGET_CRD, WIDGETS

MERGE = "application/merge-patch+json"


def build_registry(calls: list[tuple[str, Any]], lock: threading.Lock) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    def record(kind: str, value: Any = None) -> None:
        with lock:
            calls.append((kind, value))

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.finalizer = "example.dev/kopf-finalizer"
        settings.posting.level = logging.INFO
        settings.watching.server_timeout = 5
        settings.networking.request_timeout = 10

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.create("example.dev", "v1", "widgets", registry=registry)
    def created(body: kopf.Body, **_: Any) -> dict[str, str]:
        kopf.info(body, reason="WidgetSeen", message="created by the test")
        record("create", body["spec"].get("size"))
        return {"seen": "yes"}

    @kopf.on.update("example.dev", "v1", "widgets", registry=registry)
    def updated(body: kopf.Body, **_: Any) -> None:
        record("update", body["spec"].get("size"))

    @kopf.on.field("example.dev", "v1", "widgets", field="spec.size", registry=registry)
    def size_changed(old: Any, new: Any, **_: Any) -> None:
        record("field", (old, new))

    @kopf.timer("example.dev", "v1", "widgets", interval=0.2, registry=registry)
    def tick(**_: Any) -> None:
        record("timer")

    @kopf.on.delete("example.dev", "v1", "widgets", registry=registry)
    def deleted(**_: Any) -> None:
        record("delete")

    return registry


@pytest.mark.slow
def test_kopf_handlers_fire_and_events_land(
    kube_http: KubeHTTP, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    assert (
        kube_http.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", WIDGET_CRD)[0]
        == 201
    )
    calls: list[tuple[str, Any]] = []
    lock = threading.Lock()

    def kinds() -> list[str]:
        with lock:
            return [kind for kind, _ in calls]

    registry = build_registry(calls, lock)
    with KopfRunner(["run", "--standalone", "--all-namespaces"], registry=registry, timeout=30) as runner:
        body = {
            "apiVersion": "example.dev/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"size": 1},
        }
        assert kube_http.request("POST", WIDGETS, body)[0] == 201
        wait_until(lambda: "create" in kinds(), what="the create handler")

        def finalizers() -> list[str]:
            return list(kube_http.request("GET", f"{WIDGETS}/w")[1]["metadata"].get("finalizers", []))

        wait_until(lambda: "example.dev/kopf-finalizer" in finalizers(), what="Kopf's finalizer")
        wait_until(lambda: "timer" in kinds(), what="the timer")

        def creation_processed() -> bool:
            annotations = kube_http.request("GET", f"{WIDGETS}/w")[1]["metadata"].get("annotations", {})
            return "kopf.zalando.org/last-handled-configuration" in annotations

        # Patching earlier would race with Kopf's creation cycle, which then handles the newer spec.
        wait_until(creation_processed, what="the end of the creation cycle")

        status, patched = kube_http.request(
            "PATCH", f"{WIDGETS}/w", {"spec": {"size": 2}}, content_type=MERGE
        )
        assert status == 200, patched
        wait_until(lambda: "update" in kinds(), what="the update handler")

        events = kube_http.request("GET", "/api/v1/namespaces/shop/events")[1]["items"]
        seen = [e for e in events if e.get("reason") == "WidgetSeen"]
        assert seen, events
        assert seen[0]["involvedObject"]["name"] == "w"
        assert seen[0]["message"] == "created by the test"

        assert kube_http.request("DELETE", f"{WIDGETS}/w")[0] == 200
        wait_until(lambda: "delete" in kinds(), what="the delete handler")
        wait_until(lambda: kube_http.request("GET", f"{WIDGETS}/w")[0] == 404, what="the finalizer's release")

    assert runner.exit_code == 0, runner.output
    assert "Traceback" not in runner.output, runner.output
    with lock:
        assert ("field", (1, 2)) in calls
        assert ("update", 2) in calls


@pytest.mark.slow
def test_kopf_survives_a_compacted_history_by_relisting(
    kube_server: KubeServer, kube_http: KubeHTTP, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kopf resumes a dropped watch from the last resourceVersion it saw; after compaction that
    version is gone, the emulator answers the in-stream 410 ``Expired`` event as kube-apiserver
    does, and Kopf re-lists and goes on handling events (an HTTP 410 used to end the operator)."""
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    assert (
        kube_http.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", WIDGET_CRD)[0]
        == 201
    )
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.finalizer = "example.dev/kopf-finalizer"
        settings.watching.server_timeout = 30
        settings.networking.request_timeout = 10

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.create("example.dev", "v1", "widgets", registry=registry)
    def created(name: str, **_: Any) -> None:
        with lock:
            seen.append(("create", name))

    @kopf.on.update("example.dev", "v1", "widgets", registry=registry)
    def updated(name: str, **_: Any) -> None:
        with lock:
            seen.append(("update", name))

    def handled(event: tuple[str, str]) -> bool:
        with lock:
            return event in seen

    def widget(name: str) -> dict[str, Any]:
        return {
            "apiVersion": "example.dev/v1",
            "kind": "Widget",
            "metadata": {"name": name},
            "spec": {"size": 1},
        }

    def processed(name: str) -> bool:
        annotations = kube_http.request("GET", f"{WIDGETS}/{name}")[1]["metadata"].get("annotations", {})
        return "kopf.zalando.org/last-handled-configuration" in annotations

    def compact_behind_kopf(emulator: KubeEmulator) -> int:
        # One step inside the server's loop, so no bookmark can slip in: a write Kopf does not
        # watch moves the version past the last one Kopf saw, compaction forgets it, and the
        # dropped stream makes Kopf resume from it.
        store = emulator.store
        store.create(store.type_for("", "v1", "configmaps"), "shop", {"metadata": {"name": "unwatched"}})
        store.compact()
        return store.drop_watches()

    with KopfRunner(["run", "--standalone", "--all-namespaces"], registry=registry, timeout=60) as runner:
        assert kube_http.request("POST", WIDGETS, widget("before"))[0] == 201
        wait_until(lambda: handled(("create", "before")), what="the create handler")
        wait_until(lambda: processed("before"), what="the end of the creation cycle")

        assert kube_server.call(compact_behind_kopf) >= 1
        wait_until(lambda: kube_server.call(lambda e: e.expired_watches) >= 1, what="Kopf's resumption")

        assert kube_http.request("POST", WIDGETS, widget("after"))[0] == 201
        wait_until(lambda: handled(("create", "after")), what="a create after the relist")
        wait_until(lambda: processed("after"), what="the end of that creation cycle")
        status, _ = kube_http.request("PATCH", f"{WIDGETS}/before", {"spec": {"size": 2}}, content_type=MERGE)
        assert status == 200
        wait_until(lambda: handled(("update", "before")), what="an update after the relist")

    assert runner.exit_code == 0, runner.output
    assert "Traceback" not in runner.output, runner.output
    with lock:
        assert seen.count(("create", "before")) == 1  # the relist did not replay a handled create

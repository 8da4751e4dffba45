"""A store's Ready, written by the running operator with the resourceVersion it read (issue 9,
item 2): through the watch cache, the conditional write and a spec change, on the local stack."""

from __future__ import annotations

import threading
import time
from typing import Any

from rotator.models import reasons
from rotator.sandbox import demo
from tests.fixtures.rotation import NAMESPACE, Bench

STORE = f"/apis/rotator.dev/v1alpha1/namespaces/{NAMESPACE}/rotationstores/{demo.STORE}"


def wait_store(bench: Bench, generation: int, reason: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    store: dict[str, Any] = {}
    while time.monotonic() < deadline:
        store = bench.kube.get(STORE) or {}
        status = store.get("status") or {}
        ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})
        if status.get("observedGeneration") == generation and ready.get("reason") == reason:
            return store
        time.sleep(0.05)
    raise AssertionError(f"store not {reason} at generation {generation}: {store.get('status')}")


def test_store_ready_follows_its_spec_while_others_keep_writing_the_store(bench: Bench) -> None:
    """An annotation written every few milliseconds (another controller's bookkeeping) makes
    the operator's store writes meet newer resourceVersions; each 409 is re-checked from a fresh
    read, so Ready still follows the spec, and the store gets one Event per change, not per try."""
    bench.seed(deployment=False, create_policy=False)
    bench.operator.start()
    wait_store(bench, 1, reasons.STORE_READY)
    stop = threading.Event()

    def scribble() -> None:
        count = 0
        while not stop.is_set():
            count += 1
            bench.kube.merge_patch(STORE, {"metadata": {"annotations": {"example.com/scribble": str(count)}}})
            time.sleep(0.005)

    writer = threading.Thread(target=scribble, daemon=True)
    writer.start()
    try:
        bench.kube.merge_patch(STORE, {"spec": {"vault": {"address": "http://127.0.0.1:9"}}})
        broken = wait_store(bench, 2, reasons.STORE_UNAVAILABLE)
    finally:
        stop.set()
        writer.join()
    assert "127.0.0.1:9" in broken["status"]["conditions"][0]["message"]
    store_events = [
        e["reason"]
        for e in bench.events()
        if e["involvedObject"].get("kind") == "RotationStore" and e["involvedObject"]["name"] == demo.STORE
    ]
    assert store_events.count(reasons.STORE_UNAVAILABLE) == 1, store_events
    assert "Traceback" not in bench.operator.log_path.read_text()
    writes = bench.kube_server.call(
        lambda emulator: [
            r.data
            for r in emulator.history
            if r.method == "PATCH"
            and r.resource is not None
            and r.resource.plural == "rotationstores"
            and r.subresource == "status"
        ]
    )
    assert writes, "the store's status writes are in the request history"
    assert all((w.get("metadata") or {}).get("resourceVersion") for w in writes), "none blind"

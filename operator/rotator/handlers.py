"""The only module that imports kopf: settings, the per-policy daemon, wake-ups, delete, probes.

Each RotationPolicy gets one daemon (a long-lived coroutine) that loops
`engine.reconcile -> post events -> sleep until requeue or a wake-up`. A daemon rather than a
timer because a rotation chains steps back to back (requeue 0) and waits on rollouts at a
short poll, while an idle policy only needs a look every `idle_resync` seconds. Spec and
annotation changes (including `rotator.dev/force-rotate`) wake it at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf

from rotator import engine
from rotator.kube import GROUP, PLURAL, VERSION, Kube

log = logging.getLogger("rotator.handlers")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    """Process-wide state shared by the handlers through Kopf's memo."""

    deps: engine.Deps
    clock: Callable[[], datetime] = _utcnow
    wakers: dict[tuple[str, str], asyncio.Event] = field(default_factory=dict)

    @property
    def kube(self) -> Kube:
        return self.deps.kube

    def waker(self, namespace: str, name: str) -> asyncio.Event:
        return self.wakers.setdefault((namespace, name), asyncio.Event())


def _runtime(memo: Any) -> Runtime:
    runtime = memo.get("runtime")
    assert isinstance(runtime, Runtime), "run_operator() puts the Runtime into the memo"
    return runtime


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Our own annotations prefix; Kopf must not write into .status (it belongs to the engine).
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="rotator.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="rotator.dev", key="last-handled-configuration"
    )
    settings.persistence.finalizer = "rotator.dev/finalizer"
    settings.posting.level = logging.INFO
    settings.posting.reporting_component = "rotator"
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.background.cancellation_polling = 1
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 10


@kopf.daemon(GROUP, VERSION, PLURAL, id="rotate", cancellation_timeout=15.0)
async def rotate(
    name: str, namespace: str, body: kopf.Body, stopped: kopf.DaemonStopped, memo: kopf.Memo, **_: Any
) -> None:
    runtime = _runtime(memo)
    wake = runtime.waker(namespace, name)
    attempt = 0
    while not stopped:
        wake.clear()
        requeue: float | None
        try:
            obj = await asyncio.to_thread(runtime.kube.get_policy, namespace, name)
            if obj is None or obj.get("metadata", {}).get("deletionTimestamp"):
                return
            result = await asyncio.to_thread(engine.reconcile, obj, runtime.deps, runtime.clock())
            for event in result.events:
                kopf.event(body, type="Warning" if event.warning else "Normal", reason=event.reason,
                           message=event.message)
            requeue = result.requeue_after
            attempt = 0
        except Exception as exc:  # noqa: BLE001 - one bad policy must never stop the operator
            attempt += 1
            requeue = min(60.0, 2.0**attempt)
            log.warning("reconcile of %s/%s failed (%s); retrying in %.0fs", namespace, name,
                        type(exc).__name__, requeue)
            kopf.event(body, type="Warning", reason="ReconcileError", message=f"{type(exc).__name__}: {exc}")
        if requeue is not None and requeue <= 0:
            continue
        try:
            await asyncio.wait_for(wake.wait(), timeout=requeue)
        except TimeoutError:
            pass


@kopf.on.update(GROUP, VERSION, PLURAL, id="wake-on-change")
async def wake_on_change(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    """Spec and annotation edits (force-rotate, suspend, dryRun) take effect now, not at the next tick."""
    _runtime(memo).waker(namespace, name).set()


@kopf.on.delete(GROUP, VERSION, PLURAL, id="forget", optional=True)
async def forget(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    """The Secret goes with its owner; the store keeps the credential (never lose data)."""
    runtime = _runtime(memo)
    runtime.wakers.pop((namespace, name), None)
    runtime.deps.metrics.forget_policy(namespace, name)


def run_operator(
    runtime: Runtime,
    namespaces: list[str],
    liveness_port: int | None,
    stop_flag: Any | None = None,
) -> None:
    """Run Kopf until stopped; blocks. Standalone: one replica, no peering objects needed."""
    liveness = f"http://0.0.0.0:{liveness_port}/healthz" if liveness_port else None
    kopf.run(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=liveness,
        memo=kopf.Memo(runtime=runtime),
        stop_flag=stop_flag,
    )

"""The only module that imports kopf: settings, the per-policy daemon, wake-ups, delete, probes.

Each RotationPolicy gets one daemon (a long-lived coroutine) that loops
`engine.reconcile -> post events -> sleep until requeue or a wake-up`. A daemon rather than a
timer because a rotation chains steps back to back (requeue 0) and waits on rollouts at a
short poll, while an idle policy only needs a look every `idle_resync` seconds. Spec and
annotation changes (including `rotator.dev/force-rotate`) wake it at once.

With several replicas only the holder of the leader Lease reconciles (:mod:`rotator.leader`):
every daemon of a standby waits until its process leads, and a leader that loses the Lease stops
at the next checkpoint of the step it is in (:class:`rotator.leader.LeadershipLost`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import kopf

from rotator import engine
from rotator.kube import GROUP, PLURAL, VERSION, Kube, connection_of
from rotator.leader import LeaderElector, LeadershipLost
from rotator.models import PolicyRef, reasons, utcnow
from rotator.models.keys import FINALIZER

log = logging.getLogger("rotator.handlers")
KOPF_PREFIX = "kopf.rotator.dev"


@dataclass
class Runtime:
    """Process-wide state shared by the handlers through Kopf's memo."""

    deps: engine.Deps
    clock: Callable[[], datetime] = utcnow
    wakers: dict[tuple[str, str], asyncio.Event] = field(default_factory=dict)
    #: None: leader election is off and this process always reconciles.
    leader: LeaderElector | None = None
    _leading: asyncio.Event | None = field(default=None, init=False)
    _term_seen: int = field(default=0, init=False)

    @property
    def kube(self) -> Kube:
        return self.deps.kube

    def leading(self) -> bool:
        return self.leader is None or self.leader.leading()

    async def until_leading(self, stopped: kopf.DaemonStopped) -> None:
        """Wait while another replica leads: woken when this one acquires the Lease."""
        assert self.leader is not None, "only asked when leadership is in doubt"
        if self._leading is None:
            leading = self._leading = asyncio.Event()
            loop = asyncio.get_running_loop()
            self.leader.on_leading(lambda: loop.call_soon_threadsafe(leading.set))
        self._leading.clear()  # then look: an acquisition in between has set it again
        if not self.leading():
            await _sleep_until_woken(self._leading, stopped, self.leader.config.lease_duration)

    def note_reconcile(self, namespace: str, name: str) -> None:
        """Log the first reconcile of each leadership term: where a takeover ends."""
        if self.leader is not None and self.leader.term != self._term_seen:
            self._term_seen = self.leader.term
            log.info("leading: first reconcile as leader (term %d): %s/%s", self._term_seen, namespace, name)

    def waker(self, namespace: str, name: str) -> asyncio.Event:
        return self.wakers.setdefault((namespace, name), asyncio.Event())


def _runtime(memo: Any) -> Runtime:
    runtime = memo.get("runtime")
    assert isinstance(runtime, Runtime), "run_operator() puts the Runtime into the memo"
    return runtime


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Kopf keeps its bookkeeping in annotations, never in .status (that belongs to the engine).
    # Not under "rotator.dev/": Kopf hides every annotation under its own prefix from change
    # detection, and rotator.dev/force-rotate must be seen as a change.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=KOPF_PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = FINALIZER
    settings.posting.level = logging.INFO
    settings.posting.reporting_component = "rotator"
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.background.cancellation_polling = 1
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 10


@kopf.on.login()
async def login(memo: Any, **_: Any) -> kopf.ConnectionInfo:
    """Kopf connects with the same kubeconfig or in-cluster identity as our own client."""
    conn = connection_of(_runtime(memo).kube.api_client)
    return kopf.ConnectionInfo(
        server=conn.server,
        scheme="Bearer" if conn.token else None,
        token=conn.token,
        ca_path=conn.ca_path,
        certificate_path=conn.certificate_path,
        private_key_path=conn.private_key_path,
        insecure=conn.insecure,
    )


@kopf.daemon(GROUP, VERSION, PLURAL, id="rotate", cancellation_timeout=15.0)
async def rotate(
    name: str, namespace: str | None, body: kopf.Body, stopped: kopf.DaemonStopped, memo: Any, **_: Any
) -> None:
    assert namespace is not None, "RotationPolicy is namespaced"
    runtime = _runtime(memo)
    wake = runtime.waker(namespace, name)
    # Temporary results in a row: the engine's backoff for an idle policy grows with it (a
    # rotating policy counts in status.rotation.attempt). The engine owns the delays.
    failures = 0
    crashes = 0
    while not stopped:
        wake.clear()
        if not runtime.leading():
            await runtime.until_leading(stopped)
            continue
        requeue: float | None
        try:
            obj = await asyncio.to_thread(runtime.kube.get_policy, namespace, name)
            if obj is None or obj.get("metadata", {}).get("deletionTimestamp"):
                return
            runtime.note_reconcile(namespace, name)
            result = await asyncio.to_thread(
                engine.reconcile, obj, runtime.deps, runtime.clock(), failures=failures
            )
            for event in result.events:
                kopf.event(
                    body,
                    type="Warning" if event.warning else "Normal",
                    reason=event.reason,
                    message=event.message,
                )
            requeue = result.requeue_after
            failures = failures + 1 if result.temporary else 0
            crashes = 0
        except LeadershipLost:
            continue  # deposed mid-step: nothing more was written; wait as a standby
        except Exception as exc:
            # Only when even the status write failed (the API server unreachable, say).
            requeue = engine.backoff(PolicyRef(namespace, name, ""), crashes, runtime.deps.settings)
            crashes += 1
            log.warning(
                "reconcile of %s/%s failed (%s); retrying in %.0fs",
                namespace,
                name,
                type(exc).__name__,
                requeue,
                exc_info=True,
            )
            if crashes == 1:  # one Event per streak of failures; the logs have every retry
                # Only the type in the Event: an unexpected exception's text may quote what it handled.
                kopf.event(
                    body,
                    type="Warning",
                    reason=reasons.RECONCILE_ERROR,
                    message=f"{type(exc).__name__}; see the logs",
                )
        if requeue is not None and requeue <= 0:
            continue
        await _sleep_until_woken(wake, stopped, requeue)


async def _sleep_until_woken(wake: asyncio.Event, stopped: kopf.DaemonStopped, delay: float | None) -> None:
    """Sleep until the requeue time, a wake-up (spec/annotation change) or the operator stopping."""
    waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stopped.wait())]
    try:
        await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


@kopf.on.update(GROUP, VERSION, PLURAL, id="wake-on-change")
async def wake_on_change(name: str, namespace: str | None, memo: Any, **_: Any) -> None:
    """Spec and annotation edits (force-rotate, suspend, dryRun) take effect now, not at the next tick."""
    _runtime(memo).waker(namespace or "", name).set()


@kopf.on.delete(GROUP, VERSION, PLURAL, id="forget", optional=True)
async def forget(name: str, namespace: str | None, memo: Any, **_: Any) -> None:
    """The Secret goes with its owner; the store keeps the credential (never lose data)."""
    runtime = _runtime(memo)
    runtime.wakers.pop((namespace or "", name), None)
    runtime.deps.metrics.forget_policy(namespace or "", name)


def run_operator(
    runtime: Runtime,
    namespaces: list[str],
    liveness_port: int | None,
    stop_flag: Any | None = None,
    liveness_address: str = "0.0.0.0",  # noqa: S104 - a probe must reach it from the kubelet
) -> None:
    """Run Kopf until stopped; blocks. Kopf runs standalone (no peering objects): which replica
    reconciles is decided by ``runtime.leader``'s Lease, not by Kopf."""
    liveness = f"http://{liveness_address}:{liveness_port}/healthz" if liveness_port else None
    kopf.run(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=liveness,
        memo=kopf.Memo(runtime=runtime),
        stop_flag=stop_flag,
    )

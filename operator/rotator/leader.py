"""Leader election, the I/O: one thread per process keeps (or waits for) the Lease.

Several replicas run; the one holding the ``coordination.k8s.io/v1`` Lease reconciles, the
others wait (DESIGN §7). Every decision is :mod:`rotator.policy.leader`'s; this module reads and
writes the Lease (a PUT carrying the resourceVersion it read, so of two replicas racing for an
expired Lease exactly one wins: the other gets a 409) and tells the reconcilers.

A thread, not a task on Kopf's event loop: the renewal must not queue behind a thousand
reconciles in the shared executor, and a renewal that is late costs the leadership.

Leadership is a function of the clock (:meth:`LeaderElector.leading`): true only while the last
successful renewal is younger than the renew deadline. So a leader whose renewals fail, or whose
elector thread is stuck in a slow request, stops at the deadline whatever this thread is doing:
the reconcilers ask at every checkpoint of a step (:meth:`LeaderElector.stop_unless_leading`), and a
deposed leader raises :class:`LeadershipLost` there instead of acting further.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rotator.kube import Kube, KubeConflict, KubeError
from rotator.models import LeaderElection, utcnow
from rotator.policy.leader import (
    Action,
    LeaseRecord,
    Observed,
    claim,
    decide,
    lease_spec,
    observe,
    record_of,
    release,
    still_leading,
)

log = logging.getLogger("rotator.leader")

JITTER = 0.2
"""A standby's retry period is stretched by up to this fraction (client-go's JitterFactor 1.2),
so standbys started together do not knock on the Lease in step."""


class LeadershipLost(BaseException):
    """Raised at a reconcile's checkpoint once this replica no longer leads.

    A BaseException on purpose, as ``asyncio.CancelledError`` is: the engine turns every
    ``Exception`` into status (a condition, a retry), and a deposed leader must write nothing
    more. It passes through the engine to the handler, which goes back to waiting.
    """


def default_identity(pod_name: str | None, hostname: str) -> str:
    """``<pod or host>_<random>``, as controller-runtime names holders: unique per process."""
    return f"{pod_name or hostname}_{uuid.uuid4()}"


class LeaderElector:
    """Acquires and renews the Lease in a thread; answers "do I lead?" from any thread."""

    def __init__(
        self,
        kube: Kube,
        config: LeaderElection,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], bool] | None = None,
    ) -> None:
        if not config.namespace or not config.identity:
            raise ValueError("the Lease namespace and this replica's identity must be resolved first")
        # Its own request timeout: a renewal that takes longer than a retry period is better
        # abandoned and retried than waited for past the deadline.
        self._kube = Kube(
            kube.api_client, request_timeout=max(1.0, config.retry_period), on_request=kube.on_request
        )
        self.config = config
        self._monotonic = monotonic
        self._wall = wall
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._lock = threading.Lock()
        self._observed: Observed | None = None
        self._renewed_at: float | None = None
        self._term = 0
        self._announced = False
        self._listeners: list[Callable[[], object]] = []
        self._thread: threading.Thread | None = None

    @property
    def identity(self) -> str:
        return self.config.identity

    @property
    def term(self) -> int:
        """How many times this process has become leader (0: never yet)."""
        return self._term

    def leading(self) -> bool:
        with self._lock:
            renewed_at = self._renewed_at
        return still_leading(renewed_at, self._monotonic(), self.config.renew_deadline)

    def stop_unless_leading(self, point: Any) -> None:
        """A reconcile's checkpoint hook: stop here (:class:`LeadershipLost`) unless leading."""
        if not self.leading():
            raise LeadershipLost(f"no longer the leader at {point}")

    def on_leading(self, listener: Callable[[], object]) -> None:
        """Call ``listener`` (from the elector thread) each time this replica becomes leader."""
        self._listeners.append(listener)

    # --- one round -----------------------------------------------------------------------------
    def try_acquire_or_renew(self) -> bool:
        """One attempt: read the Lease, decide, write. True when this replica holds it now."""
        config = self.config
        started, wall = self._monotonic(), self._wall()
        try:
            lease = self._kube.get_lease(config.namespace, config.lease_name)
        except KubeError as exc:
            log.warning("cannot read Lease %s/%s: %s", config.namespace, config.lease_name, exc)
            return False
        record: LeaseRecord | None = None
        if lease is not None:
            record = record_of(lease)
            self._observed = observe(self._observed, record, started)
        observed = self._observed if lease is not None else None
        decision = decide(observed, self.identity, started, self.config.pod_name)
        if decision.action is Action.WAIT:
            log.debug("Lease %s/%s: %s", config.namespace, config.lease_name, decision.message)
            return False
        new = claim(record, self.identity, wall, config.lease_duration)
        try:
            if lease is None:
                self._kube.create_lease(config.namespace, self._body(new, None))
            else:
                version = str((lease.get("metadata") or {}).get("resourceVersion") or "")
                self._kube.replace_lease(config.namespace, config.lease_name, self._body(new, version))
        except KubeConflict:
            log.debug("Lease %s/%s: another replica wrote first", config.namespace, config.lease_name)
            return False
        except KubeError as exc:
            log.warning("cannot write Lease %s/%s: %s", config.namespace, config.lease_name, exc)
            return False
        with self._lock:
            self._observed = Observed(new, started)
            self._renewed_at = started
        if decision.action is not Action.RENEW:
            log.info(
                "leading: acquired Lease %s/%s as %s (%s; transition %d)",
                config.namespace,
                config.lease_name,
                self.identity,
                decision.message,
                new.transitions,
            )
        return True

    def _body(self, record: LeaseRecord, version: str | None) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self.config.lease_name, "namespace": self.config.namespace}
        if version:
            metadata["resourceVersion"] = version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": lease_spec(record),
        }

    # --- the loop --------------------------------------------------------------------------------
    def run(self) -> None:
        """Acquire, then renew every retry period, until :meth:`stop`; release on the way out."""
        config = self.config
        while not self._stop.is_set():
            was_leading = self._announced
            self.try_acquire_or_renew()
            leading = self.leading()
            if leading and not was_leading:
                self._term += 1
                self._announced = True
                for listener in list(self._listeners):
                    listener()
            elif was_leading and not leading:
                self._announced = False
                log.warning(
                    "not leading: no renewal of Lease %s/%s for %gs; reconciling stopped",
                    config.namespace,
                    config.lease_name,
                    config.renew_deadline,
                )
            delay = config.retry_period
            if not leading:
                delay *= 1 + random.uniform(0, JITTER)
            self._sleep(delay)
        self.release()

    def release(self) -> None:
        """Give the Lease up if we hold it (a clean stop), so a standby takes over at once."""
        if not self.leading():
            return
        with self._lock:
            self._renewed_at = None
        config = self.config
        try:
            lease = self._kube.get_lease(config.namespace, config.lease_name)
            if lease is None or record_of(lease).holder != self.identity:
                return
            version = str((lease.get("metadata") or {}).get("resourceVersion") or "")
            body = self._body(release(record_of(lease), self._wall()), version)
            self._kube.replace_lease(config.namespace, config.lease_name, body)
            log.info("released Lease %s/%s", config.namespace, config.lease_name)
        except KubeError as exc:  # the standby will take over when the Lease expires
            log.warning("cannot release Lease %s/%s: %s", config.namespace, config.lease_name, exc)

    def start(self) -> LeaderElector:
        if self._thread is not None:
            raise RuntimeError("the elector was already started")
        self._thread = threading.Thread(target=self.run, name="leader-election", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop and release the Lease (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

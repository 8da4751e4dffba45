"""The operator's tunables, in one documented place (in the manner of Kopf's configuration).

Each field says its unit and why its default is what it is. ``rotator run`` sets them from its
flags; tests pass their own. Nothing else in the operator hard-codes a delay.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True)
class LeaderElection:
    """Who of several replicas reconciles: the holder of a ``coordination.k8s.io/v1`` Lease.

    The convention of controller-runtime (and so of cert-manager and External Secrets), with its
    defaults: the leader renews every ``retry_period``; if it cannot renew for ``renew_deadline``
    it stops reconciling at once; a standby takes the Lease once it has seen no renewal for
    ``lease_duration`` (measured on its own clock from when it last saw the Lease change, so
    clocks need not agree). ``lease_duration - renew_deadline`` is the margin between the old
    leader's last act and the new leader's first. Seconds throughout.
    """

    enabled: bool = True
    """Off only where one replica is certain (a debugger, a single-process test)."""

    lease_name: str = "rotator-leader"
    """The Lease object; every replica of one install must name the same one."""

    namespace: str = ""
    """The Lease's namespace; empty: ``POD_NAMESPACE`` (the downward API), else the service
    account's namespace, else ``default`` (a local run)."""

    identity: str = ""
    """This replica's holderIdentity; empty: ``POD_NAME`` (else the host name) plus a random
    suffix, so a restarted process is a new holder and counts as a transition."""

    pod_name: str = ""
    """This replica's pod (``POD_NAME``): a Lease held by an earlier container of the same pod
    (a crash, restarted by the kubelet only after it exited) is taken over at once instead of
    after ``lease_duration``. Empty (a local run): no such shortcut."""

    lease_duration: float = 15.0
    """Seconds a standby waits without seeing a renewal before it takes over: the worst-case
    takeover time after a leader dies without releasing (a clean stop releases at once)."""

    renew_deadline: float = 10.0
    """Seconds the leader keeps acting without a successful renewal; then it stops reconciling
    at once. Shorter than ``lease_duration`` by the margin the old leader needs to stop."""

    retry_period: float = 2.0
    """Seconds between renewals (leader) and acquisition attempts (standby, jittered by up to
    20 %). Several tries fit in the renew deadline, so one slow API request costs nothing."""

    def __post_init__(self) -> None:
        # client-go's own check: the margins above only hold in this order.
        if not self.lease_duration > self.renew_deadline > self.retry_period * 1.2 > 0:
            raise ValueError(
                "leader election needs lease duration > renew deadline > 1.2 x retry period > 0; got "
                f"{self.lease_duration:g}s, {self.renew_deadline:g}s, {self.retry_period:g}s"
            )


@dataclass(frozen=True)
class Settings:
    idle_resync: float = 30.0
    """Seconds between looks at a policy that holds, dry-runs, is suspended or has finished a
    failed rotation, and the longest wait of a rotation step (a due time sooner wakes it sooner;
    a spec or annotation change wakes it at once). An idle, healthy policy waits ``resync``."""

    resync: float = 600.0
    """Seconds between *full* looks at an idle policy that nothing woke: ownership, the store's
    current version and the Secret compared with it. The safety net under the watches, not the
    way drift is found: a change to a managed Secret (watched by label) wakes its policy at once,
    and a due rotation wakes it at its due time. Between resyncs an idle policy costs no request.
    Jittered per policy (up to 20 % longer, :meth:`resync_after`) so policies created together do
    not resync together. Ten minutes: a drift the watch missed (a dropped watch, the operator's
    own restart) is repaired within that; the store sees one look per policy per 10-12 minutes."""

    poll: float = 1.0
    """Seconds between looks while a step waits (a rollout in progress, restarts throttled by
    ``restart.maxConcurrent``). One second keeps a rotation's wall time close to the rollout's
    own while costing a handful of reads per target per rollout."""

    backoff_base: float = 1.0
    """Seconds: the first retry after a temporary failure (store or API unreachable) comes after
    half to all of this; each further failure doubles it (see :mod:`rotator.policy.backoff`)."""

    backoff_cap: float = 60.0
    """Seconds: the longest wait between retries of a temporary failure. A minute bounds how late
    a policy notices the store is back, without hammering a store that is down."""

    permanent_error_recheck: float = 60.0
    """Seconds between re-checks of a permanent refusal (foreign Secret, unowned store path). A
    human fixes those; a minute is soon enough to notice and cheap for many broken policies."""

    credential_secret_recheck: float = 3.0
    """Seconds between re-checks while a store's static credential Secret is missing or unusable
    (:class:`rotator.models.errors.CredentialSecretUnusable`): creating or labelling it is the fix,
    and the policy and the store should turn Ready within seconds of it, not a minute later. One
    GET of that Secret per look, for broken stores only."""

    pause_after_failure: timedelta = field(default_factory=lambda: timedelta(hours=1))
    """After a rolled-back or failed rotation, scheduled, maxAge and spec-change triggers wait
    this long (``status.retryNotBefore``): the trigger that fired still holds, and retrying at
    once would restart every consumer twice per attempt, for ever. A force does not wait."""

    reconcile_workers: int = 16
    """Threads running reconciles (each is blocking I/O to the API server and the store). Python's
    default executor would give ``cores + 4`` (6 on two cores), which caps a mass rotation at six
    requests in flight; 16 keeps the API server and the store busy without the GIL and memory
    (a thread stack each) of one thread per policy. See :mod:`rotator.admission`."""

    max_rotating: int = 50
    """Rotations in their active steps at once; further due or forced policies wait their turn
    and start as earlier ones finish (bounded waves: 1,000 forced at once do not all hold two
    live credentials until the end of the run). A rotation already started always proceeds; one
    sleeping out a grace period does not count. See :mod:`rotator.admission`."""

    leader_election: LeaderElection = field(default_factory=LeaderElection)
    """Several replicas, one reconciling (see :class:`LeaderElection`)."""

    def resync_after(self, seed: str) -> float:
        """``resync`` stretched by a per-policy 0-20 % (stable for a policy, spread across them)."""
        fraction = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:4], "big") / 2**32
        return self.resync * (1 + 0.2 * fraction)

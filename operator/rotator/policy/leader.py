"""Leader election, the decisions: take the Lease, renew it, or wait (pure, clock injected).

The rules of client-go's ``leaderelection`` package, which controller-runtime, cert-manager and
External Secrets all use, so a cluster admin reads our Lease as theirs:

- The Lease records ``holderIdentity``, ``leaseDurationSeconds``, ``acquireTime``, ``renewTime``
  and ``leaseTransitions``. The holder renews it every retry period.
- A standby never trusts the times written in the Lease (another node's clock): it counts the
  lease duration from when *it* last saw the record change (``Observed.at``, a monotonic
  reading). A freshly started standby therefore waits one full duration before taking over.
- An empty holder is a Lease released by a clean stop: anyone may take it at once.
- One addition: a holder named after this replica's own pod (``<POD_NAME>_…``) is an earlier
  container of the same pod, which the kubelet restarts only after it exited (and a pod name is
  unique while the pod lives), so it is taken over at once: a crashed and restarted leader does
  not wait out its own lease. Without a pod name (a local run) nothing is assumed.
- The leader counts as leading only while its last successful renewal is younger than the
  renew deadline, which is shorter than the lease duration: it stops before anyone may start.

The I/O (reading and writing the Lease, the loop, telling the reconcilers) is
:mod:`rotator.leader`; every decision it makes is one of these functions.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


@dataclass(frozen=True)
class LeaseRecord:
    """The election fields of a Lease's spec; times are the writer's wall clock."""

    holder: str = ""
    lease_duration: float = 0.0
    acquire_time: datetime | None = None
    renew_time: datetime | None = None
    transitions: int = 0


@dataclass(frozen=True)
class Observed:
    """A Lease record as this replica saw it, and since when (monotonic seconds)."""

    record: LeaseRecord
    at: float


class Action(StrEnum):
    CREATE = "Create"
    """No Lease yet: create it, holding it."""
    ACQUIRE = "Acquire"
    """Released or expired: take it over (one more transition)."""
    RENEW = "Renew"
    """Ours: write a fresh renewTime."""
    WAIT = "Wait"
    """Another replica holds it and has renewed within the lease duration."""


@dataclass(frozen=True)
class Decision:
    action: Action
    message: str


def observe(previous: Observed | None, record: LeaseRecord, now: float) -> Observed:
    """Keep the time of the first sight of ``record``; a changed record restarts the count."""
    if previous is not None and previous.record == record:
        return previous
    return Observed(record, now)


def decide(observed: Observed | None, identity: str, now: float, pod: str = "") -> Decision:
    """What a replica called ``identity`` (running in pod ``pod``, if known) does at monotonic
    time ``now`` about the Lease it saw (None: there is no Lease)."""
    if observed is None:
        return Decision(Action.CREATE, "no Lease yet")
    record = observed.record
    if record.holder == identity:
        return Decision(Action.RENEW, "held by this replica")
    if not record.holder:
        return Decision(Action.ACQUIRE, "released by its last holder")
    if pod and record.holder.startswith(f"{pod}_"):
        return Decision(Action.ACQUIRE, f"held by {record.holder}, an earlier container of this pod")
    left = observed.at + record.lease_duration - now
    if left <= 0:
        return Decision(Action.ACQUIRE, f"{record.holder} has not renewed it for {record.lease_duration:g}s")
    return Decision(Action.WAIT, f"held by {record.holder}; expires in {left:.1f}s unless renewed")


def claim(record: LeaseRecord | None, identity: str, wall: datetime, lease_duration: float) -> LeaseRecord:
    """The record to write to create, take over or renew the Lease at wall-clock ``wall``.

    A renewal keeps acquireTime and the transition count; any change of holder (even from a
    released Lease) counts one transition, as client-go counts them.
    """
    if record is not None and record.holder == identity:
        return replace(record, lease_duration=lease_duration, renew_time=wall)
    transitions = 0 if record is None else record.transitions + 1
    return LeaseRecord(identity, lease_duration, wall, wall, transitions)


def release(record: LeaseRecord, wall: datetime) -> LeaseRecord:
    """What a leader that stops cleanly writes (client-go's ReleaseOnCancel): no holder and a
    1-second duration, so a standby takes over at its next try, not a lease duration later."""
    return LeaseRecord("", 1.0, wall, wall, record.transitions)


def still_leading(renewed_at: float | None, now: float, renew_deadline: float) -> bool:
    """Whether a leader whose last successful renewal started at ``renewed_at`` may still act.

    ``renewed_at`` is when the renewal was *sent* (monotonic): a standby counts from when it saw
    the result, which is later, so the leader's deadline always ends first.
    """
    return renewed_at is not None and now - renewed_at < renew_deadline


# --- the wire format (coordination.k8s.io/v1 LeaseSpec) --------------------------------------


def format_micro_time(value: datetime) -> str:
    """metav1.MicroTime: RFC 3339 in UTC with exactly six fractional digits."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(value)
    return None


def record_of(lease: Mapping[str, Any]) -> LeaseRecord:
    """The election fields of a Lease object; missing or malformed fields read as empty."""
    spec = lease.get("spec") or {}
    duration = spec.get("leaseDurationSeconds")
    transitions = spec.get("leaseTransitions")
    return LeaseRecord(
        holder=str(spec.get("holderIdentity") or ""),
        lease_duration=float(duration) if isinstance(duration, int | float) else 0.0,
        acquire_time=_parse_time(spec.get("acquireTime")),
        renew_time=_parse_time(spec.get("renewTime")),
        transitions=int(transitions) if isinstance(transitions, int) else 0,
    )


def lease_spec(record: LeaseRecord) -> dict[str, Any]:
    """A LeaseSpec for ``record``. leaseDurationSeconds is an integer: rounded up, so a standby
    never waits less than the configured duration."""
    spec: dict[str, Any] = {
        "holderIdentity": record.holder,
        "leaseDurationSeconds": max(1, math.ceil(record.lease_duration)),
        "leaseTransitions": record.transitions,
    }
    if record.acquire_time is not None:
        spec["acquireTime"] = format_micro_time(record.acquire_time)
    if record.renew_time is not None:
        spec["renewTime"] = format_micro_time(record.renew_time)
    return spec

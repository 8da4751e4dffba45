"""Keeps ``status.nextRotationTime`` and the per-policy gauges true to the schedule."""

from __future__ import annotations

import contextlib
from datetime import datetime

from rotator.engine.draft import Draft
from rotator.engine.facts import next_due
from rotator.metrics import Metrics
from rotator.models import RotationPolicySpec, RotationPolicyStatus


def published_next(
    spec: RotationPolicySpec, status: RotationPolicyStatus, seed: str, now: datetime
) -> datetime | None:
    """``status.nextRotationTime``: the schedule's next deadline (window honoured), never before a
    pause after failure ends. Pure; ``rotator plan`` prints the same."""
    due = next_due(spec, status, seed, now)
    if due is not None and status.retry_not_before is not None and status.retry_not_before > due:
        due = status.retry_not_before  # after a failed rotation nothing but a force comes sooner
    return due


def refresh_schedule(draft: Draft, spec: RotationPolicySpec, metrics: Metrics) -> datetime | None:
    """Record when the next rotation is due and export the gauges from status, so an operator
    restart keeps every series."""
    status = draft.status
    due = published_next(spec, status, draft.ref.owner, draft.now)
    draft.set(next_rotation_time=due)
    labels = draft.labels
    export_held(draft, spec, metrics)
    if due is None:
        _forget_next_rotation(draft, metrics)  # a schedule removed: no stale due time
    elif not (spec.suspend or spec.dry_run):
        metrics.next_rotation.labels(**labels).set(due.timestamp())
    if status.credential_created_at is not None:
        age = (draft.now - status.credential_created_at).total_seconds()
        metrics.credential_age.labels(**labels).set(max(0.0, age))
    if status.last_rotation_time is not None:
        metrics.last_success.labels(**labels).set(status.last_rotation_time.timestamp())
    lease = status.lease
    if lease is not None and lease.version == status.current_version:
        # From the real lease (what Vault answered), not from the credential's creation time.
        metrics.lease_expiry.labels(**labels).set(lease.expires_at.timestamp())
        issued = lease.issued_at or status.credential_created_at or draft.now
        metrics.lease_age.labels(**labels).set(max(0.0, (draft.now - issued).total_seconds()))
    else:
        metrics.forget_lease(draft.ref.namespace, draft.ref.name)
    metrics.in_progress.labels(**labels).set(0)
    return due


def export_held(draft: Draft, spec: RotationPolicySpec, metrics: Metrics) -> None:
    """``rotator_policy_suspended``, and no next-rotation series while nothing would rotate: a
    suspended or dry-run policy keeps its schedule in status, but exporting it would let
    RotatorRotationOverdue fire for a policy that is held on purpose."""
    held = spec.suspend or spec.dry_run
    metrics.suspended.labels(**draft.labels).set(1 if held else 0)
    if held:
        _forget_next_rotation(draft, metrics)


def _forget_next_rotation(draft: Draft, metrics: Metrics) -> None:
    with contextlib.suppress(KeyError):  # never exported in this process
        metrics.next_rotation.remove(draft.ref.namespace, draft.ref.name)

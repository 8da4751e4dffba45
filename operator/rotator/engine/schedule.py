"""Keeps ``status.nextRotationTime`` and the per-policy gauges true to the schedule."""

from __future__ import annotations

from datetime import datetime

from rotator.engine.draft import Draft
from rotator.engine.facts import next_due
from rotator.metrics import Metrics
from rotator.models import RotationPolicySpec


def refresh_schedule(draft: Draft, spec: RotationPolicySpec, metrics: Metrics) -> datetime | None:
    """Record when the next rotation is due (never before a pause after failure ends) and export
    the gauges from status, so an operator restart keeps every series."""
    status = draft.status
    due = next_due(spec, status, draft.ref.owner, draft.now)
    if due is not None and status.retry_not_before is not None and status.retry_not_before > due:
        due = status.retry_not_before  # after a failed rotation nothing but a force comes sooner
    draft.set(next_rotation_time=due)
    labels = draft.labels
    if due is not None:
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

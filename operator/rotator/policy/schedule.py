"""When is the next rotation due?

One pure function, :func:`next_rotation_time`, turns a policy's schedule (``interval`` *or*
``cron``, optional ``maxAge`` ceiling, optional ``jitter``) and what status knows (last rotation,
credential creation) into a single instant. The trigger chain compares that instant with ``now``;
the engine publishes it as ``status.nextRotationTime`` and the ``next_rotation_timestamp_seconds``
metric.

Design choices, and why:

* The anchor is the last rotation, else the credential's creation (an adopted value), else
  ``now``. Anchoring on recorded facts (not on ``now``) is what makes the answer stable across
  reconciles and operator restarts; ``now`` is only the last resort for a policy with no
  history, where the engine records ``credentialCreatedAt`` right after.
* Cron is evaluated in UTC (status times are UTC, and a cluster has no single local zone), as
  the next match strictly after the anchor. A match missed while the operator was down is in the
  past, so the policy is simply due at once.
* Jitter is a fixed per-policy offset in ``[0, jitter)`` derived from a seed (namespace/name):
  it spreads many policies sharing one cron line across a window, yet a restart computes the
  same offset, so the schedule never moves. It is added, never subtracted, so nothing rotates
  before the time the user wrote.
* ``maxAge`` is a hard ceiling applied last (after jitter): ``created_at + maxAge``. On its own
  it schedules too.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from cronsim import CronSim

__all__ = ["jitter_offset", "next_rotation_time"]


def jitter_offset(seed: str, jitter: timedelta | None) -> timedelta:
    """A deterministic offset in ``[0, jitter)``, whole seconds, derived from ``seed``.

    SHA-256 rather than ``hash()``: Python salts ``hash(str)`` per process, which would move the
    schedule on every operator restart.
    """
    if jitter is None or jitter <= timedelta(0):
        return timedelta(0)
    span = int(jitter.total_seconds())
    if span <= 0:
        return timedelta(0)
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    return timedelta(seconds=int.from_bytes(digest[:8], "big") % span)


def _next_cron_match(cron: str, after: datetime) -> datetime:
    """The first match of a 5-field cron line strictly after ``after``, in UTC."""
    return next(CronSim(cron, after.astimezone(UTC)))


def next_rotation_time(
    last_rotation: datetime | None,
    credential_created_at: datetime | None,
    interval: timedelta | None,
    cron: str | None,
    max_age: timedelta | None,
    jitter: timedelta | None,
    jitter_seed: str,
    now: datetime,
) -> datetime | None:
    """When the schedule wants the next rotation, or None when nothing schedules one.

    ``interval`` and ``cron`` are mutually exclusive in the spec; if both arrive, ``interval``
    wins (the spec validation is the place that rejects the combination). The result may be in
    the past: that means "due now". Raises ``cronsim.CronSimError`` on an invalid cron line,
    which the spec validation also rejects earlier.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    anchor = last_rotation or credential_created_at or now

    candidate: datetime | None = None
    if interval is not None:
        candidate = anchor + interval
    elif cron:
        candidate = _next_cron_match(cron, anchor)
    if candidate is not None:
        candidate += jitter_offset(jitter_seed, jitter)

    if max_age is not None:
        # The credential is made by a rotation, so the last rotation stands in for an unknown
        # creation time.
        ceiling = (credential_created_at or last_rotation or now) + max_age
        candidate = ceiling if candidate is None else min(candidate, ceiling)

    return None if candidate is None else candidate.astimezone(UTC)

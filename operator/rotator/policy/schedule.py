"""When is the next rotation due?

:func:`outlook` turns a policy's schedule (``interval`` *or* ``cron`` with its ``timeZone``,
optional ``maxAge`` ceiling, ``jitter`` and maintenance ``window``) and what status knows (last
rotation, credential creation) into two instants: when the schedule wants a rotation, and when
``maxAge`` forces one. :func:`next_rotation_time` is the earlier of the two. The trigger chain
compares them with ``now``; the engine publishes the earlier as ``status.nextRotationTime`` and the
``next_rotation_timestamp_seconds`` metric; ``rotator plan`` prints both.

Design choices, and why:

* The anchor is the last rotation, else the credential's creation (an adopted value), else
  ``now``. Anchoring on recorded facts (not on ``now``) is what makes the answer stable across
  reconciles and operator restarts; ``now`` is only the last resort for a policy with no
  history, where the engine records ``credentialCreatedAt`` right after.
* Cron is evaluated in ``timeZone`` (UTC when unset), as CronJob's ``timeZone`` does, as the next
  match strictly after the anchor; a wall-clock time skipped by a DST change fires at the next
  valid time (cronsim follows Debian cron). A match missed while the operator was down is in the
  past, so the policy is simply due at once.
* Jitter is a fixed per-policy offset in ``[0, jitter)`` derived from a seed (namespace/name):
  it spreads many policies sharing one cron line across a span, yet a restart computes the same
  offset, so the schedule never moves. It is added, never subtracted, so nothing rotates before
  the time the user wrote.
* A window moves a scheduled time that falls outside it to the next opening, plus the policy's
  jitter offset bounded by the window's length (so policies pushed to the same opening still
  spread, and stay inside the window). A due time missed while the window was closed waits for
  the next opening: a window is a promise about when consumers restart.
* ``maxAge`` is a hard ceiling applied last: ``created_at + maxAge``; on its own it schedules too.
  With a window, an expiry that falls outside it is brought forward to the last window opening
  before it (plus the bounded jitter offset), so the credential never outlives ``maxAge``. When
  no window opens between the credential's issue and its expiry, the ceiling wins: the rotation
  runs at the expiry, outside the window.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from cronsim import CronSim

from rotator.policy.window import Window

__all__ = ["Outlook", "jitter_offset", "next_rotation_time", "outlook"]


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


def _next_cron_match(cron: str, after: datetime, zone: tzinfo) -> datetime:
    """The first match of a 5-field cron line strictly after ``after``, read in ``zone``."""
    return next(CronSim(cron, after.astimezone(zone))).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Outlook:
    """The schedule's two deadlines (UTC), either may be None; a past one means "due now"."""

    #: When interval or cron (jittered, moved into the window) wants the next rotation.
    scheduled: datetime | None = None
    #: When maxAge forces one: the expiry, or the last window opening before it.
    max_age_deadline: datetime | None = None
    #: The credential's expiry (issue + maxAge) itself, for messages.
    expires_at: datetime | None = None

    @property
    def next(self) -> datetime | None:
        times = [t for t in (self.scheduled, self.max_age_deadline) if t is not None]
        return min(times) if times else None


def _in_window(window: Window, moment: datetime, seed: str, jitter: timedelta | None) -> datetime:
    """``moment`` if the window is open then, else the next opening plus the bounded offset."""
    if window.contains(moment):
        return moment
    return window.next_opening(moment) + _bounded_offset(window, seed, jitter)


def _bounded_offset(window: Window, seed: str, jitter: timedelta | None) -> timedelta:
    return jitter_offset(seed, None if jitter is None else min(jitter, window.length))


def outlook(
    last_rotation: datetime | None,
    credential_created_at: datetime | None,
    interval: timedelta | None,
    cron: str | None,
    max_age: timedelta | None,
    jitter: timedelta | None,
    jitter_seed: str,
    now: datetime,
    *,
    time_zone: tzinfo = UTC,
    window: Window | None = None,
) -> Outlook:
    """Both deadlines of a schedule (see the module docstring for the rules).

    ``interval`` and ``cron`` are mutually exclusive in the spec; if both arrive, ``interval``
    wins (the spec validation is the place that rejects the combination). Raises
    ``cronsim.CronSimError`` on an invalid cron line, which the spec validation also rejects.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    anchor = last_rotation or credential_created_at or now

    scheduled: datetime | None = None
    if interval is not None:
        scheduled = anchor + interval
    elif cron:
        scheduled = _next_cron_match(cron, anchor, time_zone)
    if scheduled is not None:
        scheduled += jitter_offset(jitter_seed, jitter)
        if window is not None:
            scheduled = _in_window(window, scheduled, jitter_seed, jitter)
            if scheduled <= now and not window.contains(now):
                scheduled = _in_window(window, now, jitter_seed, jitter)  # missed: next opening

    deadline = expires = None
    if max_age is not None:
        # The credential is made by a rotation, so the last rotation stands in for an unknown
        # creation time.
        issued = credential_created_at or last_rotation or now
        deadline = expires = issued + max_age
        if window is not None and not window.contains(expires):
            opening = window.last_opening(expires)
            if opening > issued:  # else no window in the credential's life: the ceiling wins
                deadline = opening + _bounded_offset(window, jitter_seed, jitter)

    def utc(moment: datetime | None) -> datetime | None:
        return None if moment is None else moment.astimezone(UTC)

    return Outlook(utc(scheduled), utc(deadline), utc(expires))


def next_rotation_time(
    last_rotation: datetime | None,
    credential_created_at: datetime | None,
    interval: timedelta | None,
    cron: str | None,
    max_age: timedelta | None,
    jitter: timedelta | None,
    jitter_seed: str,
    now: datetime,
    *,
    time_zone: tzinfo = UTC,
    window: Window | None = None,
) -> datetime | None:
    """When the schedule wants the next rotation, or None when nothing schedules one: the earlier
    of :func:`outlook`'s deadlines. The result may be in the past: that means "due now"."""
    return outlook(
        last_rotation,
        credential_created_at,
        interval,
        cron,
        max_age,
        jitter,
        jitter_seed,
        now,
        time_zone=time_zone,
        window=window,
    ).next

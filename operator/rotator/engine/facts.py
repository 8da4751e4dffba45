"""Pure mappings from what the engine observed (spec, typed status, annotations, store) onto the
policy layer's inputs: the trigger chain's facts and the schedule's deadlines. ``rotator plan``
asks the same functions, so what it prints is what the operator would decide."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from rotator.models import RotationPolicySpec, RotationPolicyStatus
from rotator.models.keys import FORCE_ROTATE
from rotator.policy.lease import effective_max_age, lease_max_age
from rotator.policy.schedule import Outlook, outlook
from rotator.policy.scope import credential_spec_hash
from rotator.policy.triggers import TriggerInputs
from rotator.policy.window import schedule_zone, window_of


def schedule_outlook(
    spec: RotationPolicySpec, status: RotationPolicyStatus, seed: str, now: datetime
) -> Outlook:
    """The schedule's deadlines from the last rotation, the credential's age and the window."""
    schedule = spec.schedule
    return outlook(
        status.last_rotation_time,
        status.credential_created_at,
        schedule.interval_delta,
        schedule.cron,
        max_age(spec, status),
        schedule.jitter_delta,
        seed,
        now,
        time_zone=schedule_zone(schedule),
        window=window_of(schedule),
    )


def next_due(
    spec: RotationPolicySpec, status: RotationPolicyStatus, seed: str, now: datetime
) -> datetime | None:
    """When the schedule wants the next rotation (the earlier deadline)."""
    return schedule_outlook(spec, status, seed, now).next


def _lease_max_age(status: RotationPolicyStatus) -> timedelta | None:
    return lease_max_age(
        status.lease, status.current_version, status.credential_created_at or status.last_rotation_time
    )


def max_age(spec: RotationPolicySpec, status: RotationPolicyStatus) -> timedelta | None:
    """``maxAge``, shortened (or set) by a lease of the current credential that will end."""
    return effective_max_age(spec.schedule.max_age_delta, _lease_max_age(status))


def trigger_inputs(
    spec: RotationPolicySpec,
    status: RotationPolicyStatus,
    annotations: Mapping[str, str],
    *,
    seed: str,
    now: datetime,
    store_has_value: bool,
    location: Mapping[str, str],
) -> TriggerInputs:
    """The trigger chain's facts. ``rotating`` comes from status: the chain is the one gate."""
    spec_hash = credential_spec_hash(spec, location)
    deadlines = schedule_outlook(spec, status, seed, now)
    window = window_of(spec.schedule)
    return TriggerInputs(
        suspended=spec.suspend,
        rotating=status.rotation is not None,
        force_value=annotations.get(FORCE_ROTATE),
        handled_force_value=status.last_handled_force_rotate,
        never_rotated=status.last_rotation_time is None,
        store_has_adoptable_value=store_has_value,
        last_rotation_time=status.last_rotation_time,
        credential_created_at=status.credential_created_at,
        next_due=status.next_rotation_time or deadlines.next,
        max_age=max_age(spec, status),
        max_age_from_lease=max_age(spec, status) != spec.schedule.max_age_delta,
        max_age_deadline=deadlines.max_age_deadline,
        window=window.describe() if window else None,
        window_open=window.contains(now) if window else True,
        window_opens_at=window.next_opening(now) if window else None,
        credential_spec_hash=spec_hash,
        handled_credential_spec_hash=status.credential_spec_hash or spec_hash,
        retry_not_before=status.retry_not_before,
    )

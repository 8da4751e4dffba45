"""``RotationPolicy.status`` as typed models, with the camelCase JSON both ways.

The operator persists a rotation's progress in status before any side effect (DESIGN §1), so what
it writes must read back identically: ``to_patch()`` emits exactly the CRD's fields (times as
RFC 3339 UTC: ``Time`` with whole seconds like metav1.Time, ``PreciseTime`` with milliseconds like
metav1.MicroTime where step timings need them) and ``from_raw()`` accepts what it wrote.
Unknown status fields are ignored on read rather than rejected: an older operator must not fail
on a status written by a newer one.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Self

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel

HISTORY_LIMIT: Final = 10


@functools.lru_cache(maxsize=1024)  # a status dump formats the same few moments again and again
def format_time(moment: datetime) -> str:
    """``2026-11-27T20:00:00Z``: UTC, whole seconds (kube's metav1.Time drops the rest anyway)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware time (the clock is injected, in UTC)")
    # isoformat, not strftime: twice as fast, and every status dump formats dozens of times
    return _in_utc(moment).isoformat(timespec="seconds")[:19] + "Z"


@functools.lru_cache(maxsize=1024)
def format_precise_time(moment: datetime) -> str:
    """``2026-11-27T20:00:00.123Z``: UTC with milliseconds, for the step timeline."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware time (the clock is injected, in UTC)")
    return _in_utc(moment).isoformat(timespec="milliseconds")[:23] + "Z"


def _in_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


def utcnow() -> datetime:
    """The real clock; only the edges (handlers, CLI, fakes' defaults) call it, logic gets ``now``."""
    return datetime.now(UTC)


def parse_time(text: str) -> datetime:
    """Parse RFC 3339 (``Z`` or an offset) into an aware UTC datetime."""
    moment = datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"time without a zone: {text!r}")
    return moment.astimezone(UTC)


Time = Annotated[datetime, PlainSerializer(format_time, return_type=str)]
PreciseTime = Annotated[datetime, PlainSerializer(format_precise_time, return_type=str)]


class Phase(StrEnum):
    IDLE = "Idle"
    ROTATING = "Rotating"
    ROLLING_BACK = "RollingBack"
    FAILED = "Failed"


class Step(StrEnum):
    """Rotation steps in DESIGN §1 order; the value is ``status.rotation.step``."""

    GENERATE = "generate"
    DUAL = "dual"
    SYNC = "sync"
    RESTART = "restart"
    VERIFY = "verify"
    REVOKE = "revoke"
    ROLLBACK = "rollback"


class ConditionType(StrEnum):
    READY = "Ready"
    ROTATING = "Rotating"
    DEGRADED = "Degraded"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class RotationResult(StrEnum):
    SUCCEEDED = "Succeeded"
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"


class TriggerReason(StrEnum):
    """Why a rotation started (cert-manager style: the first matching reason wins)."""

    INITIAL = "Initial"
    FORCED = "Forced"
    DUE = "Due"
    MAX_AGE_EXCEEDED = "MaxAgeExceeded"
    SPEC_CHANGED = "SpecChanged"


class _Status(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    def to_patch(self) -> dict[str, Any]:
        """camelCase JSON without unset (None) fields, ready for a merge patch or a comparison."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any] | None) -> Self:
        return cls.model_validate(dict(raw or {}))


class Condition(_Status):
    type: ConditionType
    status: ConditionStatus
    reason: str
    message: str = ""
    last_transition_time: Time
    observed_generation: int | None = None


class StepTiming(_Status):
    """One finished step and how long it took, wall clock (waits included): the timeline."""

    step: Step
    seconds: float


class RotationState(_Status):
    """The rotation in progress: enough to resume at the right step after a crash."""

    id: str
    step: Step
    reason: TriggerReason | None = None
    started_at: Time | None = None
    step_started_at: PreciseTime | None = None
    attempt: int = 0
    old_version: str | None = None
    new_version: str | None = None
    verified_at: Time | None = None
    restarted_targets: tuple[str, ...] = ()
    last_error: str | None = None
    steps: tuple[StepTiming, ...] | None = None
    store_location: dict[str, str] | None = None
    secret_name: str | None = None
    credential_spec_hash: str | None = None


class HistoryEntry(_Status):
    id: str
    result: RotationResult
    reason: TriggerReason | None = None
    started_at: Time | None = None
    finished_at: Time | None = None
    version: str | None = None
    steps: tuple[StepTiming, ...] | None = None


class DryRunReport(_Status):
    """What the operator would have done, written instead of acting when ``spec.dryRun``."""

    at: Time
    would_rotate: bool
    reason: str = ""
    message: str = ""


class LeaseStatus(_Status):
    """The current credential's lease (``vaultDatabase``): references and times, never a value.

    Belongs to store ``version``; a lease recorded for another version is stale and looked up
    again. Times are the operator's clock plus the durations Vault answered with.
    """

    version: str
    id: str
    issued_at: Time | None = None
    expires_at: Time
    #: What each renewal asks for: the TTL the lease was issued (or last renewed) with.
    ttl_seconds: int
    renewable: bool
    #: Vault capped the last renewal (the role's max_ttl): the lease ends at expiresAt.
    max_ttl_reached: bool = False
    #: Vault no longer knows the lease (revoked or expired outside rotator).
    gone: bool = False


def get_condition(conditions: Iterable[Condition], type_: ConditionType | str) -> Condition | None:
    """The condition of that type, if present."""
    kind = ConditionType(type_)
    return next((c for c in conditions if c.type == kind), None)


class RotationPolicyStatus(_Status):
    phase: Phase | None = None
    store_kind: str | None = None
    observed_generation: int | None = None
    current_version: str | None = None
    credential_created_at: Time | None = None
    last_rotation_time: Time | None = None
    next_rotation_time: Time | None = None
    last_handled_force_rotate: str | None = None
    credential_spec_hash: str | None = None
    last_result: RotationResult | None = None
    retry_not_before: Time | None = None
    #: First failure of the current streak of temporary failures (store or API unreachable, a
    #: refused login, an unexpected error); cleared by the first reconcile that ends otherwise.
    failing_since: Time | None = None
    rotation: RotationState | None = None
    conditions: tuple[Condition, ...] = ()
    history: Annotated[tuple[HistoryEntry, ...], Field(max_length=HISTORY_LIMIT)] = ()
    last_dry_run: DryRunReport | None = None
    lease: LeaseStatus | None = None

    def condition(self, kind: ConditionType) -> Condition | None:
        """The condition of that type, if present (the one lookup everyone uses)."""
        return get_condition(self.conditions, kind)

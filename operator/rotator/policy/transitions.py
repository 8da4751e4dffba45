"""The state machine of one rotation, as a pure table.

A rotation runs ``generate -> dual -> sync -> restart -> verify -> revoke`` (DESIGN §1). The
engine runs one step per reconcile, classifies what happened as an :class:`Outcome`, and asks
:func:`next_step` where to go. Keeping the graph in one literal table means the whole lifecycle
can be read (and tested) in one place, and no step module decides where the rotation goes next.

Outcomes are *step-level* verdicts. A transient error (store unreachable, 409 from the API) is
not an outcome: the engine retries the same step with backoff. ``failed``/``timed_out`` mean the
step cannot succeed, and then:

* before the old credential is touched (generate .. verify) the rotation rolls back: restore
  the old value, restart again, mark the new version failed. Rollback is idempotent and copes
  with "nothing to undo", so sending every early failure there keeps one recovery path;
* ``revoke`` failing does not roll back: the new credential is verified and in use, only the
  old one is still valid. The rotation ends ``Failed`` so a human looks at it;
* ``rollback`` failing ends ``Failed`` too: the old credential was never revoked, so consumers
  still work, but the Secret may hold a value we could not restore.

The safety rule behind the table: nothing reaches ``revoke`` except through ``verify`` done,
and :func:`may_revoke` / :func:`grace_period_over` refuse before verification passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

# Step and RotationResult are what status holds, so the models own them; re-exported here.
from rotator.models.status import RotationResult, Step

__all__ = [
    "RESULTS",
    "TRANSITIONS",
    "Outcome",
    "RotationResult",
    "Step",
    "grace_period_over",
    "may_revoke",
    "next_step",
    "result_of",
    "verify_deadline_passed",
]


class Outcome(StrEnum):
    """What running a step once produced."""

    DONE = "done"
    #: Not finished yet (rollout in progress, grace period running): run the same step later.
    WAITING = "waiting"
    #: Cannot succeed (permanent error, verification failed).
    FAILED = "failed"
    #: Gave up waiting (e.g. ``verify.timeout`` passed).
    TIMED_OUT = "timed_out"


_FORWARD: tuple[Step, ...] = (Step.GENERATE, Step.DUAL, Step.SYNC, Step.RESTART, Step.VERIFY, Step.REVOKE)
_GIVE_UP = (Outcome.FAILED, Outcome.TIMED_OUT)


def _build() -> dict[tuple[Step, Outcome], Step | None]:
    table: dict[tuple[Step, Outcome], Step | None] = {}
    for index, step in enumerate(_FORWARD):
        table[step, Outcome.DONE] = _FORWARD[index + 1] if index + 1 < len(_FORWARD) else None
        for outcome in _GIVE_UP:
            table[step, outcome] = None if step is Step.REVOKE else Step.ROLLBACK
    table[Step.ROLLBACK, Outcome.DONE] = None
    for outcome in _GIVE_UP:
        table[Step.ROLLBACK, outcome] = None
    for step in Step:
        table[step, Outcome.WAITING] = step
    return table


TRANSITIONS: Mapping[tuple[Step, Outcome], Step | None] = MappingProxyType(_build())
"""``(step, outcome) -> next step``; None means the rotation is finished. Total over Step x Outcome."""

RESULTS: Mapping[tuple[Step, Outcome], RotationResult] = MappingProxyType(
    {
        (Step.REVOKE, Outcome.DONE): RotationResult.SUCCEEDED,
        (Step.REVOKE, Outcome.FAILED): RotationResult.FAILED,
        (Step.REVOKE, Outcome.TIMED_OUT): RotationResult.FAILED,
        (Step.ROLLBACK, Outcome.DONE): RotationResult.ROLLED_BACK,
        (Step.ROLLBACK, Outcome.FAILED): RotationResult.FAILED,
        (Step.ROLLBACK, Outcome.TIMED_OUT): RotationResult.FAILED,
    }
)
"""How the rotation ends for each ``(step, outcome)`` that finishes it (exactly those where
:data:`TRANSITIONS` gives None)."""


def next_step(step: Step, outcome: Outcome) -> Step | None:
    """The step to run next, or None when the rotation is finished (see :func:`result_of`)."""
    return TRANSITIONS[Step(step), Outcome(outcome)]


def result_of(step: Step, outcome: Outcome) -> RotationResult | None:
    """How the rotation ended, when this ``(step, outcome)`` finishes it; None while it goes on."""
    return RESULTS.get((Step(step), Outcome(outcome)))


def verify_deadline_passed(step_started_at: datetime, timeout: timedelta, now: datetime) -> bool:
    """True once ``verify.timeout`` has elapsed since the verify step started.

    Measured from the step's own start (``status.rotation.stepStartedAt``), not the rotation's,
    so a slow generate or restart does not eat into the time the rollout gets.
    """
    return now >= step_started_at + timeout


def may_revoke(verified_at: datetime | None) -> bool:
    """Revocation is allowed only after verification passed; there is no other way in."""
    return verified_at is not None


def grace_period_over(verified_at: datetime | None, grace: timedelta, now: datetime) -> bool:
    """True once ``revoke.gracePeriod`` has elapsed since verification passed.

    The grace period lets stragglers (connection pools, pods that read the Secret late) move to
    the new credential before the old one stops working. Never true before verification.
    """
    if verified_at is None:  # may_revoke's rule, spelled out so the type narrows
        return False
    return now >= verified_at + grace

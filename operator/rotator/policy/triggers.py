"""Should this policy rotate now, and why?

The answer is a short, ordered chain of small checks over facts the engine has already observed
(cert-manager's "should renew" policy chain). Each check either answers or passes; the first
answer wins, so the order *is* the policy:

1. ``rotation in progress`` - one rotation at a time, and it always finishes (stopping half way
                            would strand the dual credentials); a force that arrives meanwhile
                            is absorbed by it (reported once, never queued). This link is the
                            engine's one "already rotating" gate.
2. ``suspended``          - a suspended policy starts no rotation; a pending force is reported
                            as ignored (and recorded, so resuming does not fire a stale request).
3. ``Forced``             - the ``rotator.dev/force-rotate`` annotation holds a value not yet
                            handled (see :func:`force_timestamp` for what a timestamp value
                            means).
4. ``Initial``            - never rotated, and the store held nothing we adopted.
5. ``SpecChanged``        - the credential spec (length, alphabet, ...) differs from the one the
                            current credential was made with.
6. ``MaxAgeExceeded``     - the current credential is older than ``maxAge`` (or, with a
                            maintenance window, reaches the last window opening before its
                            expiry): a hard ceiling that holds even if the schedule was missed
                            (operator down, clock skew) and whether or not the window is open.
                            A lease that will end (``vaultDatabase``) shortens it, or sets it when
                            unset (``rotator.policy.lease``).
7. ``Due``                - the schedule says so (``now >= next_due``) and the maintenance window,
                            if any, is open; a closed one holds the rotation until it opens.
8. otherwise nothing, and the message says when the next rotation is.

Force values, and why a timestamp is special: GitOps tools keep re-applying what Git says. With
``force-rotate=A`` pinned in Git and on-call setting ``B`` by hand, a self-healing sync restores
``A``; under a bare "differs from the last handled value" rule that is a second, unintended
rotation. So a value that is a timestamp (RFC 3339, or Unix seconds as ``date +%s`` prints them)
means "I want a credential issued no earlier than this": it rotates only when it differs from the
last handled value *and* the current credential was issued before it. An older timestamp is
already satisfied; it is recorded as handled and reported once. Any other value keeps the plain
rule (each new value rotates once, so ``A -> B -> A`` rotates three times): fine for a human at a
terminal, not for Git.

Everything here is pure: ``now`` is a parameter and the inputs are plain frozen values, so the
chain is tested as a table with a fake clock and the engine can record the message verbatim
(status, Events, dry-run reports).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Final

# The reason enum and the time format are status vocabulary, owned by the models; re-exported
# here so callers of the chain need one import.
from rotator.models.status import TriggerReason, format_time

__all__ = [
    "BLOCKED_PAUSED",
    "BLOCKED_ROTATING",
    "BLOCKED_SUSPENDED",
    "BLOCKED_WINDOW",
    "Decision",
    "TriggerInputs",
    "TriggerReason",
    "decide",
    "force_timestamp",
    "format_time",
]


#: ``Decision.blocked_by`` values: what held back a rotation that might otherwise happen.
BLOCKED_SUSPENDED = "Suspended"
BLOCKED_ROTATING = "RotationInProgress"
BLOCKED_PAUSED = "PausedAfterFailure"
BLOCKED_WINDOW = "OutsideMaintenanceWindow"

_RFC3339: Final = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
# Ten digits: what `date +%s` prints from 2001 to 2286. Shorter numbers stay plain values, so a
# counter ("1", "2", ...) is never read as a date in 1970 and silently ignored.
_UNIX_SECONDS: Final = re.compile(r"^[0-9]{10}$")


def force_timestamp(value: str | None) -> datetime | None:
    """The instant a force-rotate value names, or None when it is a plain value.

    RFC 3339 (``2026-12-01T08:00:00Z``, any offset, fractions dropped) or ten-digit Unix seconds.
    Whole seconds, because status times are whole seconds: the comparison with the credential's
    issue time must not depend on a fraction status cannot hold.
    """
    text = (value or "").strip()
    if _UNIX_SECONDS.match(text):
        return datetime.fromtimestamp(int(text), UTC)
    if not _RFC3339.match(text):
        return None
    try:
        moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:  # e.g. month 13: shaped like a timestamp, but not one; a plain value
        return None
    return moment.astimezone(UTC).replace(microsecond=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class TriggerInputs:
    """The facts the trigger chain needs, already observed by the engine.

    Kept independent of the pydantic models so the policy layer stays importable (and testable)
    on its own; the engine maps spec and status onto it. All datetimes must be timezone-aware.
    """

    suspended: bool = False
    #: A rotation is in progress (``status.rotation`` is set).
    rotating: bool = False
    #: Current value of the ``rotator.dev/force-rotate`` annotation (None when absent).
    force_value: str | None = None
    #: ``status.lastHandledForceRotate``: the last force value acted upon (or deliberately ignored).
    handled_force_value: str | None = None
    never_rotated: bool = False
    #: The store already held a value that was adopted, so the first rotation is not needed.
    store_has_adoptable_value: bool = False
    last_rotation_time: datetime | None = None
    credential_created_at: datetime | None = None
    #: When the schedule wants the next rotation (``schedule.next_rotation_time``).
    next_due: datetime | None = None
    max_age: timedelta | None = None
    #: ``max_age`` comes from the current credential's lease, which ends (``policy.lease``).
    max_age_from_lease: bool = False
    #: When maxAge forces a rotation (``schedule.outlook``): the expiry, or with a maintenance
    #: window the last opening before it. None: ``credential_issued_at + max_age``.
    max_age_deadline: datetime | None = None
    #: The maintenance window (``window.describe()``), whether it is open now, and when it opens
    #: next; no window means always open.
    window: str | None = None
    window_open: bool = True
    window_opens_at: datetime | None = None
    #: Hash of the credential spec as it is now, and as it was when the current value was made.
    credential_spec_hash: str = ""
    handled_credential_spec_hash: str | None = None
    #: ``status.retryNotBefore``: after a failed rotation, nothing but a force starts one sooner.
    retry_not_before: datetime | None = None

    @property
    def _new_force(self) -> str | None:
        """A force value not handled yet. An empty annotation is not a request: ``kubectl
        annotate ... force-rotate=`` is the usual way to blank it, and it must not rotate."""
        if self.force_value and self.force_value != self.handled_force_value:
            return self.force_value
        return None

    @property
    def satisfied_force(self) -> str | None:
        """A new force value that is a timestamp older than the current credential: the
        credential it asks for exists already (a GitOps sync restoring an old value)."""
        value, issued = self._new_force, self.credential_issued_at
        stamp = force_timestamp(value)
        if stamp is None or issued is None or stamp >= issued.replace(microsecond=0):
            return None
        return value

    @property
    def pending_force(self) -> str | None:
        """The force value still to be acted on, or None."""
        return None if self.satisfied_force is not None else self._new_force

    @property
    def credential_issued_at(self) -> datetime | None:
        """When the current credential was made: its creation time, else the last rotation."""
        return self.credential_created_at or self.last_rotation_time


@dataclass(frozen=True, slots=True)
class Decision:
    """The chain's answer.

    ``force_value_to_record`` is set whenever the decision consumed a force value (acted on it,
    absorbed it into the running rotation, ignored it while suspended, or found it satisfied
    already): the engine writes it to ``status.lastHandledForceRotate`` so the same value is
    never acted on twice. ``force_note`` says why a satisfied one did not rotate (an Event).
    """

    rotate: bool
    reason: TriggerReason | None
    message: str
    force_value_to_record: str | None = None
    blocked_by: str | None = None
    force_note: str | None = None


def _duration(delta: timedelta) -> str:
    """Coarse human duration for messages ("3d4h", "5m", "0s"); negative reads as zero."""
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    text = "".join(f"{value}{unit}" for value, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if value)
    return text or f"{seconds}s"


# --- the checks, in order ---------------------------------------------------------------------

Check = Callable[[TriggerInputs, datetime], Decision | None]


def _suspended(inputs: TriggerInputs, now: datetime) -> Decision | None:
    """A suspended policy starts no rotation, not even when forced.

    The pending force is recorded as handled: "ignored" means ignored, so resuming the policy
    hours later does not fire a request the user may have forgotten about.
    """
    if not inputs.suspended:
        return None
    force = inputs.pending_force
    if force is not None:
        return Decision(
            rotate=False,
            reason=None,
            message=f"policy is suspended; force ignored (force-rotate={force!r})",
            force_value_to_record=force,
            blocked_by=BLOCKED_SUSPENDED,
        )
    return Decision(rotate=False, reason=None, message="policy is suspended", blocked_by=BLOCKED_SUSPENDED)


def _rotating(inputs: TriggerInputs, now: datetime) -> Decision | None:
    """One rotation at a time.

    A force that arrives during a rotation is satisfied by the rotation already running (it
    will produce a fresh credential anyway); recording it here reports it exactly once and keeps
    it from starting a second rotation as soon as this one finishes.
    """
    if not inputs.rotating:
        return None
    force = inputs.pending_force
    if force is not None:
        return Decision(
            rotate=False,
            reason=None,
            message=(
                f"rotation in progress; force-rotate={force!r} is covered by the running rotation "
                "and will not start another one"
            ),
            force_value_to_record=force,
            blocked_by=BLOCKED_ROTATING,
        )
    return Decision(rotate=False, reason=None, message="rotation in progress", blocked_by=BLOCKED_ROTATING)


def _forced(inputs: TriggerInputs, now: datetime) -> Decision | None:
    """A new force-rotate value triggers exactly once (the value is recorded as handled)."""
    force = inputs.pending_force
    if force is None:
        return None
    return Decision(
        rotate=True,
        reason=TriggerReason.FORCED,
        message=f"rotation forced by annotation (force-rotate={force!r})",
        force_value_to_record=force,
    )


def _paused_after_failure(inputs: TriggerInputs, now: datetime) -> Decision | None:
    """After a rollback the trigger that fired (maxAge, schedule, spec change) still holds.

    Retrying at once would restart every consumer twice per attempt, for ever; so every trigger
    below waits until ``retry_not_before``. A force, above, does not: a human decided.
    """
    if inputs.retry_not_before is None or now >= inputs.retry_not_before:
        return None
    return Decision(
        rotate=False,
        reason=None,
        message=f"paused after a failed rotation until {format_time(inputs.retry_not_before)}",
        blocked_by=BLOCKED_PAUSED,
    )


def _initial(inputs: TriggerInputs, now: datetime) -> Decision | None:
    """Make the first credential, unless the store already held one that we adopted."""
    if not inputs.never_rotated or inputs.store_has_adoptable_value:
        return None
    return Decision(rotate=True, reason=TriggerReason.INITIAL, message="credential has never been rotated")


def _spec_changed(inputs: TriggerInputs, now: datetime) -> Decision | None:
    """The credential spec changed since the current value was made.

    With no recorded hash there is nothing to compare against (e.g. a freshly adopted value):
    the engine records the hash then, and only a later change triggers.
    """
    handled = inputs.handled_credential_spec_hash
    if handled is None or handled == inputs.credential_spec_hash:
        return None
    return Decision(
        rotate=True,
        reason=TriggerReason.SPEC_CHANGED,
        message="credential spec changed since the current credential was made",
    )


def _max_age_exceeded(inputs: TriggerInputs, now: datetime) -> Decision | None:
    """The hard ceiling on credential age; the schedule normally fires first. A window never
    holds it back: the deadline already sits in the last window before the expiry."""
    issued = inputs.credential_issued_at
    if inputs.max_age is None or issued is None:
        return None
    expiry = issued + inputs.max_age
    deadline = inputs.max_age_deadline or expiry
    if now < deadline:
        return None
    source = " (from its lease, which Vault will not extend)" if inputs.max_age_from_lease else ""
    if now < expiry:
        message = (
            f"credential issued at {format_time(issued)} expires at {format_time(expiry)} (maxAge "
            f"{_duration(inputs.max_age)}{source}), outside the maintenance window {inputs.window}: "
            "rotating in the last window before it"
        )
    else:
        message = (
            f"credential issued at {format_time(issued)} is {_duration(now - issued)} old, "
            f"maxAge is {_duration(inputs.max_age)}{source}"
        )
    return Decision(rotate=True, reason=TriggerReason.MAX_AGE_EXCEEDED, message=message)


def _due(inputs: TriggerInputs, now: datetime) -> Decision | None:
    """The schedule's time has come (or passed while the operator was down), and the window, if
    any, is open; a closed one holds the rotation (Initial, SpecChanged and a force do not wait)."""
    if inputs.next_due is None or now < inputs.next_due:
        return None
    if not inputs.window_open:
        opens = f", which opens at {format_time(inputs.window_opens_at)}" if inputs.window_opens_at else ""
        return Decision(
            rotate=False,
            reason=None,
            message=(
                f"scheduled rotation due at {format_time(inputs.next_due)} waits for the maintenance "
                f"window {inputs.window}{opens}"
            ),
            blocked_by=BLOCKED_WINDOW,
        )
    return Decision(
        rotate=True,
        reason=TriggerReason.DUE,
        message=f"scheduled rotation was due at {format_time(inputs.next_due)}",
    )


CHECKS: Sequence[Check] = (
    _rotating,
    _suspended,
    _forced,
    _paused_after_failure,
    _initial,
    _spec_changed,
    _max_age_exceeded,
    _due,
)
"""The chain, in order. The first check that answers decides."""


def decide(inputs: TriggerInputs, now: datetime) -> Decision:
    """Run the trigger chain and explain the answer.

    ``now`` must be timezone-aware: comparing it with status times (always UTC) must not
    silently depend on the host's local time.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return _with_satisfied_force(inputs, _chain(inputs, now))


def _chain(inputs: TriggerInputs, now: datetime) -> Decision:
    for check in CHECKS:
        decision = check(inputs, now)
        if decision is not None:
            return decision
    return Decision(rotate=False, reason=None, message=idle_message(inputs.next_due))


def idle_message(next_due: datetime | None) -> str:
    """What Ready says of a policy with nothing to do: its next due time, or that it has none."""
    if next_due is None:
        return "no rotation scheduled; rotates only when forced or when the credential spec changes"
    return f"next rotation at {format_time(next_due)}"


def _with_satisfied_force(inputs: TriggerInputs, decision: Decision) -> Decision:
    """A timestamp force older than the current credential is recorded as handled and said once,
    whatever else the chain decided (a due rotation still starts: the force just adds nothing)."""
    value, issued = inputs.satisfied_force, inputs.credential_issued_at
    if value is None or issued is None:
        return decision
    note = (
        f"force-rotate={value!r} is not newer than the current credential (issued "
        f"{format_time(issued)}): already satisfied, no rotation for it"
    )
    message = f"{decision.message}; {note}"
    return replace(decision, message=message, force_value_to_record=value, force_note=note)

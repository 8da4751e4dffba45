"""The trigger chain with a maintenance window, and force values that survive GitOps.

The same fake clock and idle policy as test_triggers.py: issued ten days ago, nothing due.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from rotator.policy.triggers import (
    BLOCKED_ROTATING,
    BLOCKED_WINDOW,
    TriggerInputs,
    TriggerReason,
    decide,
    force_timestamp,
)

NOW = datetime(2026, 11, 27, 20, 0, 0, tzinfo=UTC)
DAY = timedelta(days=1)
ISSUED = NOW - 10 * DAY  # 2026-11-17T20:00:00Z
WINDOW = "Mon,Tue,Wed,Thu,Fri 02:00-04:00 Europe/Berlin"
OPENS = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)

IDLE = TriggerInputs(
    last_rotation_time=ISSUED,
    credential_created_at=ISSUED,
    next_due=NOW + 20 * DAY,
    max_age=90 * DAY,
    credential_spec_hash="h1",
    handled_credential_spec_hash="h1",
    force_value="100",
    handled_force_value="100",
    window=WINDOW,
    window_open=False,
    window_opens_at=OPENS,
)


def row(**changes: object) -> TriggerInputs:
    return replace(IDLE, **changes)  # type: ignore[arg-type]


# --- the window -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "rotate", "reason", "blocked_by", "message"),
    [
        pytest.param(
            row(next_due=NOW - DAY),
            False,
            None,
            BLOCKED_WINDOW,
            "scheduled rotation due at 2026-11-26T20:00:00Z waits for the maintenance window "
            f"{WINDOW}, which opens at 2026-11-30T01:00:00Z",
            id="closed-window-holds-a-due-rotation",
        ),
        pytest.param(
            row(next_due=NOW - DAY, window_open=True),
            True,
            TriggerReason.DUE,
            None,
            "scheduled rotation was due at 2026-11-26T20:00:00Z",
            id="open-window-lets-it-through",
        ),
        pytest.param(
            row(next_due=NOW - DAY, window=None, window_open=True, window_opens_at=None),
            True,
            TriggerReason.DUE,
            None,
            "scheduled rotation was due at 2026-11-26T20:00:00Z",
            id="no-window-always-open",
        ),
        pytest.param(
            row(max_age=10 * DAY + DAY, max_age_deadline=NOW - 2 * 3600 * timedelta(seconds=1)),
            True,
            TriggerReason.MAX_AGE_EXCEEDED,
            None,
            "credential issued at 2026-11-17T20:00:00Z expires at 2026-11-28T20:00:00Z (maxAge 11d), "
            f"outside the maintenance window {WINDOW}: rotating in the last window before it",
            id="max-age-brought-forward-fires-before-the-expiry",
        ),
        pytest.param(
            row(max_age=10 * DAY, max_age_deadline=NOW),
            True,
            TriggerReason.MAX_AGE_EXCEEDED,
            None,
            "credential issued at 2026-11-17T20:00:00Z is 10d old, maxAge is 10d",
            id="max-age-at-expiry-ignores-the-closed-window",
        ),
        pytest.param(
            row(max_age=11 * DAY, max_age_deadline=NOW + DAY),
            False,
            None,
            None,
            "next rotation at 2026-12-17T20:00:00Z",
            id="max-age-deadline-not-reached",
        ),
        pytest.param(
            row(never_rotated=True, next_due=NOW - DAY),
            True,
            TriggerReason.INITIAL,
            None,
            "credential has never been rotated",
            id="initial-does-not-wait",
        ),
        pytest.param(
            row(force_value="200", next_due=NOW - DAY),
            True,
            TriggerReason.FORCED,
            None,
            "rotation forced by annotation (force-rotate='200')",
            id="force-does-not-wait",
        ),
    ],
)
def test_window_gates_scheduled_and_max_age(
    inputs: TriggerInputs, rotate: bool, reason: TriggerReason | None, blocked_by: str | None, message: str
) -> None:
    decision = decide(inputs, NOW)
    assert (decision.rotate, decision.reason, decision.blocked_by, decision.message) == (
        rotate,
        reason,
        blocked_by,
        message,
    )


def test_closed_window_without_a_known_opening_still_says_why() -> None:
    decision = decide(row(next_due=NOW - DAY, window_opens_at=None), NOW)
    assert decision.message.endswith(f"waits for the maintenance window {WINDOW}")


# --- force values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-12-01T08:00:00Z", datetime(2026, 12, 1, 8, tzinfo=UTC)),
        ("2026-12-01t08:00:00z", datetime(2026, 12, 1, 8, tzinfo=UTC)),
        ("2026-12-01T10:00:00.999+02:00", datetime(2026, 12, 1, 8, tzinfo=UTC)),
        ("2026-12-01 08:00:00Z", datetime(2026, 12, 1, 8, tzinfo=UTC)),
        ("1796112000", datetime(2026, 12, 1, 8, tzinfo=UTC)),
        ("1", None),  # a counter is a plain value, never 1970
        ("123456789", None),
        ("2026-12-01", None),  # a date alone is not RFC 3339 date-time
        ("2026-13-01T08:00:00Z", None),  # shaped like one, but no such month
        ("2026-12-01T08:00:00", None),  # no offset: which zone?
        ("on-call-fix", None),
        ("", None),
        (None, None),
    ],
)
def test_force_timestamp(value: str | None, expected: datetime | None) -> None:
    assert force_timestamp(value) == expected


GIT_A = "2026-11-01T00:00:00Z"  # pinned in Git, older than the current credential
ONCALL_B = "2026-11-27T19:59:00Z"


@pytest.mark.parametrize(
    ("force", "handled", "rotate", "record"),
    [
        pytest.param(GIT_A, ONCALL_B, False, GIT_A, id="gitops-restores-an-older-timestamp:satisfied"),
        pytest.param(ONCALL_B, GIT_A, True, ONCALL_B, id="newer-timestamp-rotates"),
        pytest.param("1763337600", ONCALL_B, False, "1763337600", id="older-unix-seconds:satisfied"),
        pytest.param("1795000000", None, True, "1795000000", id="future-unix-seconds-rotates-once"),
        pytest.param(
            format(ISSUED, "%Y-%m-%dT%H:%M:%SZ"), None, True, None, id="same-second-as-issue-rotates"
        ),
        pytest.param("A", "B", True, "A", id="plain-values-keep-differs-rule"),
        pytest.param(GIT_A, GIT_A, False, None, id="handled-is-handled"),
    ],
)
def test_force_values(force: str, handled: str | None, rotate: bool, record: str | None) -> None:
    decision = decide(row(force_value=force, handled_force_value=handled), NOW)
    assert decision.rotate is rotate
    assert decision.force_value_to_record == (record if record is not None else (force if rotate else None))


def test_satisfied_force_is_recorded_and_said_once_and_a_due_rotation_still_starts() -> None:
    satisfied = decide(
        row(force_value=GIT_A, handled_force_value=ONCALL_B, next_due=NOW - DAY, window_open=True), NOW
    )
    assert satisfied.rotate
    assert satisfied.reason is TriggerReason.DUE
    assert satisfied.force_value_to_record == GIT_A
    assert satisfied.force_note == (
        f"force-rotate={GIT_A!r} is not newer than the current credential (issued "
        "2026-11-17T20:00:00Z): already satisfied, no rotation for it"
    )
    assert satisfied.message.endswith(satisfied.force_note)
    again = decide(row(force_value=GIT_A, handled_force_value=GIT_A), NOW)
    assert (again.force_value_to_record, again.force_note) == (None, None)


def test_satisfied_force_during_a_rotation_is_reported_by_the_rotating_link() -> None:
    decision = decide(row(rotating=True, force_value=GIT_A, handled_force_value=ONCALL_B), NOW)
    assert decision.blocked_by == BLOCKED_ROTATING
    assert decision.force_value_to_record == GIT_A
    assert decision.message.startswith("rotation in progress; force-rotate=")
    assert "already satisfied" in decision.message


def test_a_b_a_with_timestamps_rotates_twice_not_three_times() -> None:
    """Git pins A; on-call sets B (now); the GitOps tool restores A: two rotations, not three."""
    rotations = 0
    issued, handled = datetime(2026, 10, 1, tzinfo=UTC), None
    for value, clock in [
        (GIT_A, datetime(2026, 11, 1, 0, 5, tzinfo=UTC)),
        (ONCALL_B, NOW),
        (GIT_A, NOW + DAY),
    ]:
        inputs = row(
            force_value=value,
            handled_force_value=handled,
            last_rotation_time=issued,
            credential_created_at=issued,
        )
        decision = decide(inputs, clock)
        handled = decision.force_value_to_record or handled
        if decision.rotate:
            rotations += 1
            issued = clock  # the rotation finishes after the request
    assert rotations == 2
    assert handled == GIT_A

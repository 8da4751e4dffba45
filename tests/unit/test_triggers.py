"""The trigger chain, read as a spec: one row per situation, with a fake clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rotator.policy.triggers import (
    BLOCKED_PAUSED,
    BLOCKED_ROTATING,
    BLOCKED_SUSPENDED,
    Decision,
    TriggerInputs,
    TriggerReason,
    decide,
    format_time,
)

NOW = datetime(2026, 11, 27, 20, 0, 0, tzinfo=UTC)
DAY = timedelta(days=1)

# A healthy, already-rotated policy with nothing to do: every row changes only what it tests.
IDLE = TriggerInputs(
    last_rotation_time=NOW - 10 * DAY,
    credential_created_at=NOW - 10 * DAY,
    next_due=NOW + 20 * DAY,
    max_age=90 * DAY,
    credential_spec_hash="h1",
    handled_credential_spec_hash="h1",
    force_value="100",
    handled_force_value="100",
)


def row(**changes: object) -> TriggerInputs:
    return replace(IDLE, **changes)  # type: ignore[arg-type]


CASES = [
    pytest.param(IDLE, False, None, None, None, "next rotation at 2026-12-17T20:00:00Z", id="idle"),
    pytest.param(
        row(suspended=True), False, None, None, BLOCKED_SUSPENDED, "policy is suspended", id="suspended"
    ),
    pytest.param(
        row(suspended=True, next_due=NOW - DAY),
        False,
        None,
        None,
        BLOCKED_SUSPENDED,
        "policy is suspended",
        id="suspended-beats-due",
    ),
    pytest.param(
        row(suspended=True, force_value="200"),
        False,
        None,
        "200",
        BLOCKED_SUSPENDED,
        "policy is suspended; force ignored (force-rotate='200')",
        id="suspended-force-ignored-and-recorded",
    ),
    pytest.param(
        row(suspended=True, never_rotated=True),
        False,
        None,
        None,
        BLOCKED_SUSPENDED,
        "policy is suspended",
        id="suspended-beats-every-trigger",
    ),
    pytest.param(
        row(suspended=True, rotating=True, force_value="200"),
        False,
        None,
        "200",
        BLOCKED_ROTATING,
        "rotation in progress; force-rotate='200' is covered by the running rotation "
        "and will not start another one",
        id="a-running-rotation-finishes-even-when-suspended-and-absorbs-the-force",
    ),
    pytest.param(
        row(rotating=True), False, None, None, BLOCKED_ROTATING, "rotation in progress", id="rotating"
    ),
    pytest.param(
        row(rotating=True, force_value="200"),
        False,
        None,
        "200",
        BLOCKED_ROTATING,
        "rotation in progress; force-rotate='200' is covered by the running rotation "
        "and will not start another one",
        id="force-during-rotation-absorbed-once",
    ),
    pytest.param(
        row(rotating=True, next_due=NOW - DAY, handled_credential_spec_hash="old"),
        False,
        None,
        None,
        BLOCKED_ROTATING,
        "rotation in progress",
        id="rotating-beats-due-and-spec-change",
    ),
    pytest.param(
        row(force_value="200"),
        True,
        TriggerReason.FORCED,
        "200",
        None,
        "rotation forced by annotation (force-rotate='200')",
        id="forced",
    ),
    pytest.param(
        row(force_value="1", handled_force_value=None),
        True,
        TriggerReason.FORCED,
        "1",
        None,
        "rotation forced by annotation (force-rotate='1')",
        id="forced-first-value",
    ),
    pytest.param(
        row(force_value="200", never_rotated=True, next_due=NOW - DAY),
        True,
        TriggerReason.FORCED,
        "200",
        None,
        "rotation forced by annotation (force-rotate='200')",
        id="forced-beats-initial-and-due",
    ),
    pytest.param(
        row(force_value="", handled_force_value="100"),
        False,
        None,
        None,
        None,
        "next rotation at 2026-12-17T20:00:00Z",
        id="blank-annotation-is-no-request",
    ),
    pytest.param(
        row(force_value=None, handled_force_value="100"),
        False,
        None,
        None,
        None,
        "next rotation at 2026-12-17T20:00:00Z",
        id="annotation-removed",
    ),
    pytest.param(
        row(never_rotated=True, last_rotation_time=None, credential_created_at=None, next_due=None),
        True,
        TriggerReason.INITIAL,
        None,
        None,
        "credential has never been rotated",
        id="initial",
    ),
    pytest.param(
        row(never_rotated=True, store_has_adoptable_value=True, last_rotation_time=None),
        False,
        None,
        None,
        None,
        "next rotation at 2026-12-17T20:00:00Z",
        id="adopted-value-skips-initial",
    ),
    pytest.param(
        row(never_rotated=True, store_has_adoptable_value=True, last_rotation_time=None, next_due=NOW),
        True,
        TriggerReason.DUE,
        None,
        None,
        "scheduled rotation was due at 2026-11-27T20:00:00Z",
        id="adopted-value-rotates-on-schedule",
    ),
    pytest.param(
        row(credential_spec_hash="h2"),
        True,
        TriggerReason.SPEC_CHANGED,
        None,
        None,
        "credential spec changed since the current credential was made",
        id="spec-changed",
    ),
    pytest.param(
        row(handled_credential_spec_hash=None),
        False,
        None,
        None,
        None,
        "next rotation at 2026-12-17T20:00:00Z",
        id="no-recorded-hash-is-no-change",
    ),
    pytest.param(
        row(credential_spec_hash="h2", max_age=DAY, next_due=NOW - DAY),
        True,
        TriggerReason.SPEC_CHANGED,
        None,
        None,
        "credential spec changed since the current credential was made",
        id="spec-changed-beats-max-age",
    ),
    pytest.param(
        row(max_age=10 * DAY, next_due=NOW - DAY),
        True,
        TriggerReason.MAX_AGE_EXCEEDED,
        None,
        None,
        "credential issued at 2026-11-17T20:00:00Z is 10d old, maxAge is 10d",
        id="max-age-reached-exactly-beats-due",
    ),
    pytest.param(
        row(max_age=10 * DAY + timedelta(seconds=1)),
        False,
        None,
        None,
        None,
        "next rotation at 2026-12-17T20:00:00Z",
        id="max-age-one-second-short",
    ),
    pytest.param(
        row(
            max_age=5 * DAY, credential_created_at=None, last_rotation_time=NOW - 6 * DAY - timedelta(hours=3)
        ),
        True,
        TriggerReason.MAX_AGE_EXCEEDED,
        None,
        None,
        "credential issued at 2026-11-21T17:00:00Z is 6d3h old, maxAge is 5d",
        id="max-age-falls-back-to-last-rotation",
    ),
    pytest.param(
        row(max_age=10 * DAY, max_age_from_lease=True),
        True,
        TriggerReason.MAX_AGE_EXCEEDED,
        None,
        None,
        "credential issued at 2026-11-17T20:00:00Z is 10d old, maxAge is 10d "
        "(from its lease, which Vault will not extend)",
        id="max-age-from-a-lease-says-so",
    ),
    pytest.param(
        row(max_age=5 * DAY, credential_created_at=None, last_rotation_time=None),
        False,
        None,
        None,
        None,
        "next rotation at 2026-12-17T20:00:00Z",
        id="max-age-without-any-time-cannot-judge",
    ),
    pytest.param(
        row(next_due=NOW),
        True,
        TriggerReason.DUE,
        None,
        None,
        "scheduled rotation was due at 2026-11-27T20:00:00Z",
        id="due-exactly-now",
    ),
    pytest.param(
        row(next_due=NOW - timedelta(hours=5)),
        True,
        TriggerReason.DUE,
        None,
        None,
        "scheduled rotation was due at 2026-11-27T15:00:00Z",
        id="due-missed-while-down",
    ),
    pytest.param(
        row(next_due=NOW + timedelta(seconds=1)),
        False,
        None,
        None,
        None,
        "next rotation at 2026-11-27T20:00:01Z",
        id="not-yet-due",
    ),
    pytest.param(
        row(next_due=None, max_age=None),
        False,
        None,
        None,
        None,
        "no rotation scheduled; rotates only when forced or when the credential spec changes",
        id="nothing-scheduled",
    ),
    pytest.param(
        row(retry_not_before=NOW + DAY, credential_created_at=NOW - 100 * DAY, next_due=NOW - DAY),
        False,
        None,
        None,
        BLOCKED_PAUSED,
        "paused after a failed rotation until 2026-11-28T20:00:00Z",
        id="paused-after-failure-beats-max-age-and-due",
    ),
    pytest.param(
        row(retry_not_before=NOW + DAY, force_value="300"),
        True,
        TriggerReason.FORCED,
        "300",
        None,
        "rotation forced by annotation (force-rotate='300')",
        id="force-ignores-the-pause",
    ),
    pytest.param(
        row(retry_not_before=NOW, next_due=NOW - DAY),
        True,
        TriggerReason.DUE,
        None,
        None,
        "scheduled rotation was due at 2026-11-26T20:00:00Z",
        id="pause-over-due-fires",
    ),
]


@pytest.mark.parametrize(("inputs", "rotate", "reason", "record", "blocked_by", "message"), CASES)
def test_decide(
    inputs: TriggerInputs,
    rotate: bool,
    reason: TriggerReason | None,
    record: str | None,
    blocked_by: str | None,
    message: str,
) -> None:
    assert decide(inputs, NOW) == Decision(rotate, reason, message, record, blocked_by)


def test_force_triggers_once() -> None:
    """After the engine records the handled value, the same annotation no longer rotates."""
    first = decide(row(force_value="200"), NOW)
    assert first.rotate
    assert first.force_value_to_record == "200"
    again = decide(row(force_value="200", handled_force_value=first.force_value_to_record), NOW)
    assert not again.rotate


def test_force_absorbed_during_rotation_does_not_fire_afterwards() -> None:
    during = decide(row(rotating=True, force_value="200"), NOW)
    after = decide(row(force_value="200", handled_force_value=during.force_value_to_record), NOW)
    assert not after.rotate
    assert after.force_value_to_record is None


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(IDLE, datetime(2026, 11, 27, 20, 0))


def test_reason_values_are_the_status_strings() -> None:
    assert [str(r) for r in TriggerReason] == ["Initial", "Forced", "Due", "MaxAgeExceeded", "SpecChanged"]


def test_format_time_is_rfc3339_utc() -> None:
    other_zone = datetime(2026, 11, 27, 21, 30, 5, 999, tzinfo=UTC).astimezone(timezone(timedelta(hours=2)))
    assert format_time(other_zone) == "2026-11-27T21:30:05Z"


_times = st.one_of(st.none(), st.integers(-400, 400).map(lambda d: NOW + timedelta(days=d)))


@given(
    suspended=st.booleans(),
    rotating=st.booleans(),
    force=st.one_of(st.none(), st.sampled_from(["", "1", "2"])),
    handled=st.one_of(st.none(), st.sampled_from(["1", "2"])),
    never=st.booleans(),
    adopted=st.booleans(),
    last=_times,
    created=_times,
    due=_times,
    max_age=st.one_of(st.none(), st.integers(1, 400).map(lambda d: timedelta(days=d))),
    spec_hash=st.sampled_from(["a", "b"]),
    handled_hash=st.one_of(st.none(), st.sampled_from(["a", "b"])),
)
def test_chain_invariants(
    suspended: bool,
    rotating: bool,
    force: str | None,
    handled: str | None,
    never: bool,
    adopted: bool,
    last: datetime | None,
    created: datetime | None,
    due: datetime | None,
    max_age: timedelta | None,
    spec_hash: str,
    handled_hash: str | None,
) -> None:
    """Whatever the facts: a blocked policy never rotates, a rotation always has a reason, and a
    force value is only ever recorded when it is new and non-blank."""
    inputs = TriggerInputs(
        suspended=suspended,
        rotating=rotating,
        force_value=force,
        handled_force_value=handled,
        never_rotated=never,
        store_has_adoptable_value=adopted,
        last_rotation_time=last,
        credential_created_at=created,
        next_due=due,
        max_age=max_age,
        credential_spec_hash=spec_hash,
        handled_credential_spec_hash=handled_hash,
    )
    decision = decide(inputs, NOW)
    assert decision.message
    assert decision.rotate == (decision.reason is not None)
    if suspended or rotating:
        assert not decision.rotate
        assert decision.blocked_by is not None
    else:
        assert decision.blocked_by is None
    if decision.force_value_to_record is not None:
        assert decision.force_value_to_record == force
        assert force
        assert force != handled
    if force and force != handled:
        # A new force value is always consumed, whatever else happens.
        assert decision.force_value_to_record == force
        assert decision.reason in (TriggerReason.FORCED, None)

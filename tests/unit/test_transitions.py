"""The rotation state machine as a table: every (step, outcome) pair and where it leads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rotator.policy.transitions import (
    RESULTS,
    TRANSITIONS,
    Outcome,
    RotationResult,
    Step,
    grace_period_over,
    may_revoke,
    next_step,
    result_of,
    verify_deadline_passed,
)

NOW = datetime(2026, 11, 27, 20, 0, 0, tzinfo=UTC)
S, Out, R = Step, Outcome, RotationResult

TABLE = [
    # step, outcome, next step, result
    (S.GENERATE, Out.DONE, S.DUAL, None),
    (S.DUAL, Out.DONE, S.SYNC, None),
    (S.SYNC, Out.DONE, S.RESTART, None),
    (S.RESTART, Out.DONE, S.VERIFY, None),
    (S.VERIFY, Out.DONE, S.REVOKE, None),
    (S.REVOKE, Out.DONE, None, R.SUCCEEDED),
    (S.VERIFY, Out.FAILED, S.ROLLBACK, None),
    (S.VERIFY, Out.TIMED_OUT, S.ROLLBACK, None),
    (S.GENERATE, Out.FAILED, S.ROLLBACK, None),
    (S.DUAL, Out.FAILED, S.ROLLBACK, None),
    (S.SYNC, Out.TIMED_OUT, S.ROLLBACK, None),
    (S.RESTART, Out.FAILED, S.ROLLBACK, None),
    (S.ROLLBACK, Out.DONE, None, R.ROLLED_BACK),
    (S.REVOKE, Out.FAILED, None, R.FAILED),
    (S.REVOKE, Out.TIMED_OUT, None, R.FAILED),
    (S.ROLLBACK, Out.FAILED, None, R.FAILED),
    (S.ROLLBACK, Out.TIMED_OUT, None, R.FAILED),
    *[(step, Out.WAITING, step, None) for step in Step],
]


@pytest.mark.parametrize(
    ("step", "outcome", "expected_next", "expected_result"),
    [pytest.param(*row, id=f"{row[0]}-{row[1]}") for row in TABLE],
)
def test_table(
    step: Step, outcome: Outcome, expected_next: Step | None, expected_result: RotationResult | None
) -> None:
    assert next_step(step, outcome) == expected_next
    assert result_of(step, outcome) == expected_result


def test_table_is_total() -> None:
    assert set(TRANSITIONS) == {(step, outcome) for step in Step for outcome in Outcome}


def test_finished_exactly_when_there_is_a_result() -> None:
    for key, nxt in TRANSITIONS.items():
        assert (nxt is None) == (key in RESULTS), key


def test_revoke_only_reachable_through_verify_done() -> None:
    """The safety rule: the old credential is revoked only after verification passed."""
    into_revoke = {
        key for key, nxt in TRANSITIONS.items() if nxt is Step.REVOKE and key[0] is not Step.REVOKE
    }
    assert into_revoke == {(Step.VERIFY, Outcome.DONE)}


def test_rollback_never_leads_to_revoke() -> None:
    assert all(TRANSITIONS[Step.ROLLBACK, o] in (None, Step.ROLLBACK) for o in Outcome)


def test_happy_path_walk() -> None:
    step: Step | None = Step.GENERATE
    walked = []
    while step is not None:
        walked.append(step)
        last = step
        step = next_step(step, Outcome.DONE)
    assert walked == [S.GENERATE, S.DUAL, S.SYNC, S.RESTART, S.VERIFY, S.REVOKE]
    assert result_of(last, Outcome.DONE) is R.SUCCEEDED


def test_accepts_status_strings() -> None:
    """The engine reads the step from status as a plain string."""
    assert next_step("verify", "timed_out") is Step.ROLLBACK  # type: ignore[arg-type]
    assert result_of("rollback", "done") is R.ROLLED_BACK  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("started", "timeout", "passed"),
    [
        pytest.param(NOW - timedelta(minutes=9), timedelta(minutes=10), False, id="within"),
        pytest.param(NOW - timedelta(minutes=10), timedelta(minutes=10), True, id="exactly"),
        pytest.param(NOW - timedelta(hours=1), timedelta(minutes=10), True, id="long-past"),
        pytest.param(NOW + timedelta(minutes=1), timedelta(minutes=10), False, id="clock-skew-future-start"),
    ],
)
def test_verify_deadline(started: datetime, timeout: timedelta, passed: bool) -> None:
    assert verify_deadline_passed(started, timeout, NOW) is passed


@pytest.mark.parametrize(
    ("verified_at", "grace", "over"),
    [
        pytest.param(None, timedelta(0), False, id="never-before-verification"),
        pytest.param(None, timedelta(minutes=5), False, id="unverified-with-grace"),
        pytest.param(NOW - timedelta(minutes=4), timedelta(minutes=5), False, id="grace-running"),
        pytest.param(NOW - timedelta(minutes=5), timedelta(minutes=5), True, id="grace-exactly-over"),
        pytest.param(NOW, timedelta(0), True, id="no-grace"),
    ],
)
def test_grace_period(verified_at: datetime | None, grace: timedelta, over: bool) -> None:
    assert grace_period_over(verified_at, grace, NOW) is over


def test_may_revoke() -> None:
    assert may_revoke(None) is False
    assert may_revoke(NOW) is True


def test_status_strings() -> None:
    assert [str(s) for s in Step] == ["generate", "dual", "sync", "restart", "verify", "revoke", "rollback"]
    assert [str(o) for o in Outcome] == ["done", "waiting", "failed", "timed_out"]
    assert [str(r) for r in RotationResult] == ["Succeeded", "RolledBack", "Failed"]

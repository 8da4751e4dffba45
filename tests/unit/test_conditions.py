"""One helper sets conditions: transition time moves only when the status flips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rotator.models import Condition, ConditionType, get_condition, reasons, set_condition

T0 = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def test_new_condition_is_stamped_and_serialised_like_metav1() -> None:
    result = set_condition((), "Ready", True, reasons.READY, "ok", T0, 3)
    assert [c.to_patch() for c in result] == [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Ready",
            "message": "ok",
            "lastTransitionTime": "2026-11-27T20:00:00Z",
            "observedGeneration": 3,
        }
    ]


def test_unchanged_status_keeps_transition_time_but_refreshes_the_rest() -> None:
    first = set_condition((), "Ready", True, reasons.READY, "ok", T0, 1)
    second = set_condition(first, ConditionType.READY, "True", reasons.SUSPENDED, "suspended", T1, 2)
    assert second[0].last_transition_time == T0
    assert (second[0].reason, second[0].message) == ("Suspended", "suspended")
    assert second[0].observed_generation == 2


def test_status_flip_moves_transition_time() -> None:
    first = set_condition((), "Ready", True, reasons.READY, "ok", T0, 1)
    second = set_condition(first, "Ready", False, reasons.INVALID_SPEC, "spec.x: bad", T1, 2)
    assert second[0].status == "False"
    assert second[0].last_transition_time == T1


def test_other_conditions_untouched_in_order() -> None:
    start = set_condition((), "Ready", True, reasons.READY, "ok", T0, 1)
    start = set_condition(start, "Degraded", False, reasons.ROTATION_SUCCEEDED, "fine", T0, 1)
    result = set_condition(start, "Degraded", True, reasons.ROTATION_ROLLED_BACK, "rolled back", T1, 2)
    assert [c.type for c in result] == ["Ready", "Degraded"]
    assert result[0] == start[0]
    assert start[1].status == "False", "the input is never modified (conditions are frozen)"
    assert get_condition(result, "Degraded") == result[1]
    assert get_condition(result, "Rotating") is None


def test_unknown_status_is_allowed_and_nonsense_refused() -> None:
    assert set_condition((), "Ready", "Unknown", reasons.READY, "", T0, 1)[0].status == "Unknown"
    with pytest.raises(ValueError, match="maybe"):
        set_condition((), "Ready", "maybe", reasons.READY, "", T0, 1)
    with pytest.raises(ValueError, match="Healthy"):
        set_condition((), "Healthy", True, reasons.READY, "", T0, 1)


def test_conditions_are_frozen() -> None:
    condition = set_condition((), "Ready", True, reasons.READY, "ok", T0, 1)[0]
    assert isinstance(condition, Condition)
    with pytest.raises(ValueError, match="frozen"):
        condition.reason = "Other"  # type: ignore[misc]

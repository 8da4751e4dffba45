"""The one helper that sets a status condition, and the reasons conditions carry.

cert-manager/ESO rule: a condition's ``lastTransitionTime`` moves only when its ``status``
flips, so "Ready since" stays meaningful across the many reconciles that only refresh the
message; ``observedGeneration`` says which spec the condition judged. Callers emit an Event with
the same reason constant, so ``kubectl describe`` and the condition tell the same story.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from rotator.models.status import ConditionStatus, format_time

# Reasons (CamelCase, as metav1.Condition requires); same values as the Events that go with them.
READY: Final = "Ready"
INVALID_SPEC: Final = "InvalidSpec"
SUSPENDED: Final = "Suspended"
DRY_RUN: Final = "DryRun"
IDLE: Final = "Idle"
ROTATING: Final = "Rotating"
ROTATION_SUCCEEDED: Final = "RotationSucceeded"
ROTATION_ROLLED_BACK: Final = "RotationRolledBack"
ROTATION_FAILED: Final = "RotationFailed"
STORE_UNAVAILABLE: Final = "StoreUnavailable"


def _status_text(status: bool | str) -> str:
    if isinstance(status, bool):
        return ConditionStatus.TRUE if status else ConditionStatus.FALSE
    return str(ConditionStatus(status))  # refuses anything but True/False/Unknown


def set_condition(
    conditions: Iterable[Mapping[str, Any]],
    type_: str,
    status: bool | str,
    reason: str,
    message: str,
    now: datetime,
    generation: int,
) -> list[dict[str, Any]]:
    """Return ``conditions`` (raw camelCase dicts, as in ``.status``) with ``type_`` set.

    ``lastTransitionTime`` is kept when the status is unchanged and set to ``now`` otherwise;
    ``observedGeneration`` is always stamped. Other conditions are returned untouched, in order,
    and the input is not modified.
    """
    text = _status_text(status)
    result: list[dict[str, Any]] = []
    found = False
    for existing in conditions:
        condition = dict(existing)
        if condition.get("type") == type_:
            found = True
            if condition.get("status") != text or not condition.get("lastTransitionTime"):
                condition["lastTransitionTime"] = format_time(now)
            condition.update(status=text, reason=reason, message=message, observedGeneration=generation)
        result.append(condition)
    if not found:
        result.append(
            {
                "type": type_,
                "status": text,
                "reason": reason,
                "message": message,
                "lastTransitionTime": format_time(now),
                "observedGeneration": generation,
            }
        )
    return result


def get_condition(conditions: Iterable[Mapping[str, Any]], type_: str) -> Mapping[str, Any] | None:
    """The raw condition of that type, if present."""
    return next((c for c in conditions if c.get("type") == type_), None)

"""The one helper that sets a status condition.

cert-manager/ESO rule: a condition's ``lastTransitionTime`` moves only when its ``status``
flips, so "Ready since" stays meaningful across the many reconciles that only refresh the
message; ``observedGeneration`` says which spec the condition judged. Callers emit an Event with
the same reason constant (:mod:`rotator.models.reasons`), so ``kubectl describe`` and the
condition tell the same story.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from rotator.models.status import Condition, ConditionStatus, ConditionType
from rotator.models.status import get_condition as get_condition  # its home is beside Condition


def _status_of(status: bool | str) -> ConditionStatus:
    if isinstance(status, bool):
        return ConditionStatus.TRUE if status else ConditionStatus.FALSE
    return ConditionStatus(status)  # refuses anything but True/False/Unknown


def set_condition(
    conditions: Iterable[Condition],
    type_: ConditionType | str,
    status: bool | str,
    reason: str,
    message: str,
    now: datetime,
    generation: int,
) -> tuple[Condition, ...]:
    """Return ``conditions`` with ``type_`` set; the others untouched, in order.

    ``lastTransitionTime`` is kept when the status is unchanged and set to ``now`` otherwise;
    ``observedGeneration`` is always stamped.
    """
    kind = ConditionType(type_)
    value = _status_of(status)
    result: list[Condition] = []
    found = False
    for existing in conditions:
        if existing.type == kind:
            found = True
            moved = existing.status != value
            existing = Condition(
                type=kind,
                status=value,
                reason=reason,
                message=message,
                last_transition_time=now if moved else existing.last_transition_time,
                observed_generation=generation,
            )
        result.append(existing)
    if not found:
        result.append(
            Condition(
                type=kind,
                status=value,
                reason=reason,
                message=message,
                last_transition_time=now,
                observed_generation=generation,
            )
        )
    return tuple(result)

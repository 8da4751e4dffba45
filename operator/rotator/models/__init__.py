"""The RotationPolicy resource as Python types: spec (validated like the CRD), status, conditions.

Bottom layer: imports nothing else from rotator, so every other layer may use it.
"""

from rotator.models.conditions import get_condition, set_condition
from rotator.models.durations import format_duration, next_cron_time, parse_duration
from rotator.models.errors import InvalidSpecError
from rotator.models.spec import (
    Alphabet,
    RotationPolicySpec,
    StoreKind,
    WorkloadKind,
    parse_spec,
)
from rotator.models.status import (
    Condition,
    ConditionStatus,
    ConditionType,
    DryRunReport,
    HistoryEntry,
    Phase,
    RotationPolicyStatus,
    RotationResult,
    RotationState,
    Step,
    TriggerReason,
    format_time,
    parse_time,
)

__all__ = [
    "Alphabet",
    "Condition",
    "ConditionStatus",
    "ConditionType",
    "DryRunReport",
    "HistoryEntry",
    "InvalidSpecError",
    "Phase",
    "RotationPolicySpec",
    "RotationPolicyStatus",
    "RotationResult",
    "RotationState",
    "Step",
    "StoreKind",
    "TriggerReason",
    "WorkloadKind",
    "format_duration",
    "format_time",
    "get_condition",
    "next_cron_time",
    "parse_duration",
    "parse_spec",
    "parse_time",
    "set_condition",
]

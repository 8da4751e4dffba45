"""The RotationPolicy resource as Python types and the vocabulary every layer shares.

Bottom layer: imports nothing else from rotator, so every other layer may use it. One home each:
spec and status types, condition and Event reasons (``reasons``), annotation/label/tag keys
(``keys``), settings (``settings``), time formats (``status``) and the shared errors.
"""

from rotator.models.conditions import get_condition, set_condition
from rotator.models.durations import format_duration, next_cron_time, parse_duration
from rotator.models.errors import CredentialSecretUnusable, InvalidSpecError, PermanentError
from rotator.models.refs import Event, PolicyRef
from rotator.models.settings import LeaderElection, Settings
from rotator.models.spec import (
    Alphabet,
    RotationPolicySpec,
    StoreKind,
    WorkloadKind,
    parse_spec,
)
from rotator.models.status import (
    HISTORY_LIMIT,
    Condition,
    ConditionStatus,
    ConditionType,
    DryRunReport,
    HistoryEntry,
    LeaseStatus,
    Phase,
    RotationPolicyStatus,
    RotationResult,
    RotationState,
    Step,
    StepTiming,
    TriggerReason,
    format_precise_time,
    format_time,
    parse_time,
    utcnow,
)

__all__ = [
    "HISTORY_LIMIT",
    "Alphabet",
    "Condition",
    "ConditionStatus",
    "ConditionType",
    "CredentialSecretUnusable",
    "DryRunReport",
    "Event",
    "HistoryEntry",
    "InvalidSpecError",
    "LeaderElection",
    "LeaseStatus",
    "PermanentError",
    "Phase",
    "PolicyRef",
    "RotationPolicySpec",
    "RotationPolicyStatus",
    "RotationResult",
    "RotationState",
    "Settings",
    "Step",
    "StepTiming",
    "StoreKind",
    "TriggerReason",
    "WorkloadKind",
    "format_duration",
    "format_precise_time",
    "format_time",
    "get_condition",
    "next_cron_time",
    "parse_duration",
    "parse_spec",
    "parse_time",
    "set_condition",
    "utcnow",
]

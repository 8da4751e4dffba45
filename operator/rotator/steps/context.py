"""What every step receives and returns.

A step is one idempotent unit of work keyed by the rotation id: it observes the store and the
cluster, acts only when they are not yet in the state it produces, and reports an outcome. The
engine persists the result; a crash between the side effect and that write simply makes the
step run again, and the observation turns the second run into a no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import SecretStr

from rotator.kube import Kube
from rotator.models.spec import RotationPolicySpec
from rotator.policy.transitions import Outcome
from rotator.stores.base import Store


@dataclass(frozen=True)
class PolicyRef:
    namespace: str
    name: str
    uid: str

    @property
    def owner(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the policy; reasons are the constants in rotator.steps.reasons."""

    reason: str
    message: str
    warning: bool = False


@dataclass(frozen=True)
class StepContext:
    policy: PolicyRef
    spec: RotationPolicySpec
    rotation_id: str
    old_version: str | None
    new_version: str | None
    step_started_at: datetime
    verified_at: datetime | None
    restarted_targets: tuple[str, ...]
    store: Store
    kube: Kube
    now: datetime
    generate: Callable[[], SecretStr]
    checkpoint: Callable[[str], None]
    verify_timeout: timedelta
    grace_period: timedelta


@dataclass(frozen=True)
class StepResult:
    outcome: Outcome
    message: str
    # Rotation-state fields to set, in status (camelCase) form: newVersion, verifiedAt, ...
    updates: Mapping[str, Any] = field(default_factory=dict)
    events: tuple[Event, ...] = ()
    # How soon to look again when waiting; None lets the engine pick its default poll.
    requeue_after: float | None = None
    # Kinds of the workloads this run actually patched (for rotator_restarts_total).
    restarted_kinds: tuple[str, ...] = ()


class PermanentStepError(Exception):
    """A problem no retry can fix (a foreign Secret, an unowned store path): named in a condition."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason

"""What every step receives and returns.

A step is one idempotent unit of work keyed by the rotation id: it observes the store and the
cluster, acts only when they are not yet in the state it produces, and reports an outcome. The
engine persists the result; a crash between the side effect and that write simply makes the
step run again, and the observation turns the second run into a no-op.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import SecretStr

from rotator.kube import Kube
from rotator.managed_secret import write_secret
from rotator.models import Event, PermanentError, PolicyRef, reasons
from rotator.models.spec import RotationPolicySpec
from rotator.policy.transitions import Outcome
from rotator.steps.checkpoints import CheckpointHook
from rotator.stores.base import Store
from rotator.targets.base import Target
from rotator.targets.credential import Credential, CredentialFormatError, decode_credential


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
    #: Where the credential is valid: mints, activates, authenticates and retires it.
    target: Target
    checkpoint: CheckpointHook
    verify_timeout: timedelta
    grace_period: timedelta
    #: Seconds until a waiting step wants to look again (Settings.poll).
    poll: float


@dataclass(frozen=True)
class StepResult:
    outcome: Outcome
    message: str
    #: RotationState fields to set, by their Python names (new_version, verified_at, ...).
    updates: Mapping[str, Any] = field(default_factory=dict)
    events: tuple[Event, ...] = ()
    #: How soon to look again when waiting; None lets the engine use Settings.poll.
    requeue_after: float | None = None
    #: Kinds of the workloads this run actually patched (for rotator_restarts_total).
    restarted_kinds: tuple[str, ...] = ()


def write_managed_secret(ctx: StepContext, values: Mapping[str, SecretStr], version: str) -> bool:
    """The policy's Secret holds ``values`` at store ``version`` for this rotation; True if written."""
    secret = ctx.spec.secret
    return write_secret(
        ctx.kube,
        ctx.policy,
        secret.name,
        values,
        version,
        ctx.rotation_id,
        delete_with_policy=secret.delete_with_policy,
    )


def read_credential(ctx: StepContext, version: str) -> Credential:
    """Store ``version`` as the policy's kind of credential; a value of another shape (written by
    someone else, or before spec.credential changed kind) is a refusal naming the version."""
    credential = ctx.spec.credential
    try:
        return decode_credential(credential.kind, ctx.store.read_value(version), credential.fields)
    except CredentialFormatError as exc:
        raise PermanentError(reasons.CREDENTIAL_FORMAT, f"store version {version}: {exc}") from None


def gave_up(message: str, reason: str, outcome: Outcome = Outcome.FAILED) -> StepResult:
    """The step cannot succeed (or timed out): recorded as the rotation's last error, with a
    Warning Event; the transition table sends the rotation to rollback."""
    return StepResult(outcome, message, {"last_error": message}, (Event(reason, message, True),))

"""Step 3: the Kubernetes Secret carries the new value (and the old one under previousKey)."""

from __future__ import annotations

from pydantic import SecretStr

from rotator.managed_secret import write_secret
from rotator.models import Event, reasons
from rotator.policy.transitions import Outcome
from rotator.steps.checkpoints import Checkpoint
from rotator.steps.context import StepContext, StepResult


def run(ctx: StepContext) -> StepResult:
    assert ctx.new_version is not None, "sync runs after generate recorded the new version"
    secret = ctx.spec.secret
    values: dict[str, SecretStr] = {secret.key: ctx.store.read_value(ctx.new_version)}
    if secret.previous_key and ctx.old_version is not None:
        values[secret.previous_key] = ctx.store.read_value(ctx.old_version)
    ctx.checkpoint(Checkpoint.SYNC_BEFORE_WRITE)
    changed = write_secret(
        ctx.kube,
        ctx.policy,
        secret.name,
        values,
        ctx.new_version,
        ctx.rotation_id,
        delete_with_policy=secret.delete_with_policy,
    )
    ctx.checkpoint(Checkpoint.SYNC_AFTER_WRITE)
    message = f"Secret {secret.name} holds version {ctx.new_version}"
    events = (Event(reasons.SECRET_SYNCED, message),) if changed else ()
    return StepResult(Outcome.DONE, message, {}, events)

"""Step 3: the Kubernetes Secret carries the new value (and the old one under previousKey)."""

from __future__ import annotations

from pydantic import SecretStr

from rotator.models import Event, reasons
from rotator.policy.transitions import Outcome
from rotator.steps.checkpoints import Checkpoint
from rotator.steps.context import StepContext, StepResult, write_managed_secret


def run(ctx: StepContext) -> StepResult:
    assert ctx.new_version is not None, "sync runs after generate recorded the new version"
    secret = ctx.spec.secret
    values: dict[str, SecretStr] = {secret.key: ctx.store.read_value(ctx.new_version)}
    if secret.previous_key and ctx.old_version is not None:
        values[secret.previous_key] = ctx.store.read_value(ctx.old_version)
    ctx.checkpoint(Checkpoint.SYNC_BEFORE_WRITE)
    changed = write_managed_secret(ctx, values, ctx.new_version)
    ctx.checkpoint(Checkpoint.SYNC_AFTER_WRITE)
    message = f"Secret {secret.name} holds version {ctx.new_version}"
    events = (Event(reasons.SECRET_SYNCED, message),) if changed else ()
    return StepResult(Outcome.DONE, message, {}, events)

"""Step 3: the Kubernetes Secret carries the new value (and the old one under previousKey)."""

from __future__ import annotations

from pydantic import SecretStr

from rotator.managed_secret import ensure_secret_is_ours, held_value
from rotator.policy.transitions import Outcome
from rotator.steps.checkpoints import Checkpoint
from rotator.steps.context import StepContext, StepResult, write_managed_secret


def run(ctx: StepContext) -> StepResult:
    assert ctx.new_version is not None, "sync runs after generate recorded the new version"
    secret = ctx.spec.secret
    values: dict[str, SecretStr] = {secret.key: ctx.store.read_value(ctx.new_version)}
    if secret.previous_key and ctx.old_version is not None:
        # The old value is what the Secret holds (rotator wrote it, its hash says untouched);
        # only otherwise is it read back from the store.
        existing = ensure_secret_is_ours(ctx.kube, ctx.policy, secret.name)
        old = held_value(existing, ctx.policy, secret.key, ctx.old_version)
        values[secret.previous_key] = old if old is not None else ctx.store.read_value(ctx.old_version)
    ctx.checkpoint(Checkpoint.SYNC_BEFORE_WRITE)
    write_managed_secret(ctx, values, ctx.new_version)
    ctx.checkpoint(Checkpoint.SYNC_AFTER_WRITE)
    return StepResult(Outcome.DONE, f"Secret {secret.name} holds version {ctx.new_version}")

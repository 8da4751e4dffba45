"""Step 3: the Kubernetes Secret carries the new value (and the old one under previousKey)."""

from __future__ import annotations

from rotator.managed_secret import ensure_secret_is_ours, held_value
from rotator.policy.transitions import Outcome
from rotator.steps.checkpoints import Checkpoint
from rotator.steps.context import StepContext, StepResult, read_credential, write_managed_secret
from rotator.targets.credential import Credential
from rotator.targets.shape import secret_values


def run(ctx: StepContext) -> StepResult:
    assert ctx.new_version is not None, "sync runs after generate recorded the new version"
    secret = ctx.spec.secret
    previous: Credential | None = None
    if secret.previous_key and ctx.old_version is not None:
        # The old password is what the Secret holds (rotator wrote it, its hash says untouched);
        # only otherwise is it read back from the store.
        existing = ensure_secret_is_ours(ctx.kube, ctx.policy, secret.name)
        old = held_value(existing, ctx.policy, secret.key, ctx.old_version)
        field = ctx.spec.credential.secret_field
        previous = {field: old} if old is not None else read_credential(ctx, ctx.old_version)
    values = secret_values(ctx.spec, read_credential(ctx, ctx.new_version), previous)
    ctx.checkpoint(Checkpoint.SYNC_BEFORE_WRITE)
    write_managed_secret(ctx, values, ctx.new_version)
    ctx.checkpoint(Checkpoint.SYNC_AFTER_WRITE)
    return StepResult(Outcome.DONE, f"Secret {secret.name} holds version {ctx.new_version}")

"""Step 3: the Kubernetes Secret carries the new value (and the old one under previousKey)."""

from __future__ import annotations

from pydantic import SecretStr

from rotator.policy.transitions import Outcome
from rotator.steps import reasons
from rotator.steps.context import Event, StepContext, StepResult
from rotator.steps.secret_sync import write_secret


def run(ctx: StepContext) -> StepResult:
    assert ctx.new_version is not None, "sync runs after generate recorded the new version"
    secret = ctx.spec.secret
    values: dict[str, SecretStr] = {secret.key: ctx.store.read_value(ctx.new_version)}
    if secret.previous_key and ctx.old_version is not None:
        values[secret.previous_key] = ctx.store.read_value(ctx.old_version)
    ctx.checkpoint("sync:before-write")
    changed = write_secret(ctx.kube, ctx.policy, secret.name, values, ctx.new_version, ctx.rotation_id)
    ctx.checkpoint("sync:after-write")
    message = f"Secret {secret.name} holds version {ctx.new_version}"
    events = (Event(reasons.SECRET_SYNCED, message),) if changed else ()
    return StepResult(Outcome.DONE, message, {}, events)

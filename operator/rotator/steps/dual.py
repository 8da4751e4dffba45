"""Step 2: old and new both valid; the store promotes new to current and keeps old as previous."""

from __future__ import annotations

from rotator.policy.transitions import Outcome
from rotator.steps.checkpoints import Checkpoint
from rotator.steps.context import StepContext, StepResult, read_credential


def run(ctx: StepContext) -> StepResult:
    assert ctx.new_version is not None, "dual runs after generate recorded the new version"
    activated = ""
    if ctx.target.remote:
        # Valid at the target before the store makes it "latest": a reader of the store never
        # gets a credential the target would refuse. The old one is left as it is.
        new = read_credential(ctx, ctx.new_version)
        ctx.target.activate(new)
        activated = f"{ctx.target.reference(new)} activated; "
    ctx.checkpoint(Checkpoint.DUAL_BEFORE_PROMOTE)
    ctx.store.promote(ctx.new_version, ctx.old_version)
    ctx.checkpoint(Checkpoint.DUAL_AFTER_PROMOTE)
    kept = ctx.old_version or "none"
    return StepResult(
        Outcome.DONE, f"{activated}store version {ctx.new_version} is current, {kept} kept as previous"
    )

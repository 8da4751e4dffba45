"""Step 2: old and new both valid; the store promotes new to current and keeps old as previous."""

from __future__ import annotations

from rotator.policy.transitions import Outcome
from rotator.steps.checkpoints import Checkpoint
from rotator.steps.context import StepContext, StepResult


def run(ctx: StepContext) -> StepResult:
    assert ctx.new_version is not None, "dual runs after generate recorded the new version"
    ctx.checkpoint(Checkpoint.DUAL_BEFORE_PROMOTE)
    # The password credential has no target system: both values stay valid by construction.
    ctx.store.promote(ctx.new_version, ctx.old_version)
    ctx.checkpoint(Checkpoint.DUAL_AFTER_PROMOTE)
    return StepResult(
        Outcome.DONE,
        f"store version {ctx.new_version} is current, {ctx.old_version or 'none'} kept as previous",
    )

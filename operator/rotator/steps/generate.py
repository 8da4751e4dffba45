"""Step 1: write the new credential to the store as pending, exactly once per rotation id."""

from __future__ import annotations

from rotator.policy.transitions import Outcome
from rotator.steps.checkpoints import Checkpoint
from rotator.steps.context import StepContext, StepResult


def run(ctx: StepContext) -> StepResult:
    existing = ctx.store.find_by_rotation(ctx.rotation_id)
    if existing is not None:
        # A crash after the write but before status was saved: adopt it, never write a second.
        return StepResult(
            Outcome.DONE,
            f"adopted store version {existing.version} already written for this rotation",
            {"new_version": existing.version},
        )
    ctx.checkpoint(Checkpoint.GENERATE_BEFORE_WRITE)
    written = ctx.store.write_pending(ctx.generate(), ctx.rotation_id)
    ctx.checkpoint(Checkpoint.GENERATE_AFTER_WRITE)
    return StepResult(
        Outcome.DONE, f"wrote store version {written.version} as pending", {"new_version": written.version}
    )

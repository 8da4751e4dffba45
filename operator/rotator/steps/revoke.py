"""Step 6: after the grace period, revoke the old credential and drop previousKey from the Secret."""

from __future__ import annotations

from pydantic import SecretStr

from rotator.policy.transitions import Outcome, grace_period_over, may_revoke
from rotator.steps.checkpoints import Checkpoint
from rotator.steps.context import StepContext, StepResult, write_managed_secret


def run(ctx: StepContext) -> StepResult:
    assert ctx.new_version is not None, "revoke runs after generate recorded the new version"
    if not may_revoke(ctx.verified_at):
        # Defence in depth: the transition table never gets here unverified, but a hand-edited
        # status could; the old credential is the only safe fallback, so refuse.
        return StepResult(Outcome.FAILED, "refusing to revoke: verification has not passed")
    assert ctx.verified_at is not None
    if not grace_period_over(ctx.verified_at, ctx.grace_period, ctx.now):
        remaining = (ctx.verified_at + ctx.grace_period - ctx.now).total_seconds()
        return StepResult(
            Outcome.WAITING,
            f"grace period: revoking the old credential in {remaining:.0f}s",
            {},
            (),
            remaining,
        )
    secret = ctx.spec.secret
    # Read from the store, not taken from the Secret: the new credential must still be there
    # before the old one is destroyed.
    values: dict[str, SecretStr] = {secret.key: ctx.store.read_value(ctx.new_version)}
    ctx.checkpoint(Checkpoint.REVOKE_BEFORE_SECRET)
    write_managed_secret(ctx, values, ctx.new_version)
    ctx.checkpoint(Checkpoint.REVOKE_BEFORE_STORE)
    if ctx.old_version is not None:
        ctx.store.revoke(ctx.old_version)
    ctx.checkpoint(Checkpoint.REVOKE_AFTER_STORE)
    if ctx.old_version is None:  # the first credential: nothing was revoked
        return StepResult(Outcome.DONE, "no old credential to revoke (first credential)")
    return StepResult(Outcome.DONE, f"old credential (store version {ctx.old_version}) revoked")

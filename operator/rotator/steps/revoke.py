"""Step 6: after the grace period, revoke the old credential and drop previousKey from the Secret."""

from __future__ import annotations

from rotator.models import PermanentError
from rotator.policy.transitions import Outcome, grace_period_over, may_revoke
from rotator.steps.checkpoints import Checkpoint
from rotator.steps.context import StepContext, StepResult, read_credential, write_managed_secret
from rotator.stores.errors import StoreVersionNotFound
from rotator.targets.credential import Credential
from rotator.targets.shape import secret_values


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
    # Read from the store, not taken from the Secret: the new credential must still be there
    # before the old one is destroyed.
    new = read_credential(ctx, ctx.new_version)
    ctx.checkpoint(Checkpoint.REVOKE_BEFORE_SECRET)
    write_managed_secret(ctx, secret_values(ctx.spec, new), ctx.new_version)
    ctx.checkpoint(Checkpoint.REVOKE_BEFORE_STORE)
    if ctx.old_version is not None:
        old = _old_credential(ctx, ctx.old_version) if ctx.target.remote else None
        if old is not None:
            # At the target first, then the store: the store's old version is the record of
            # what to retire, so it goes last (a crash in between retires again, harmlessly).
            ctx.target.retire(old, keep=new)
        ctx.store.revoke(ctx.old_version)
    ctx.checkpoint(Checkpoint.REVOKE_AFTER_STORE)
    if ctx.old_version is None:  # the first credential: nothing was revoked
        return StepResult(Outcome.DONE, "no old credential to revoke (first credential)")
    return StepResult(Outcome.DONE, f"old credential (store version {ctx.old_version}) revoked")


def _old_credential(ctx: StepContext, version: str) -> Credential | None:
    """The credential to retire at the target; None when there is nothing left to retire there:
    its store version is gone (retired before the store revoke that a crash interrupted) or it is
    not of the policy's kind (an adopted value: no role of ours)."""
    try:
        return read_credential(ctx, version)
    except (StoreVersionNotFound, PermanentError):
        return None

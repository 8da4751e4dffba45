"""Step 1: write the new credential to the store as pending, exactly once per rotation id."""

from __future__ import annotations

from rotator.managed_secret import authorize_secret_write
from rotator.models import PermanentError
from rotator.policy.transitions import Outcome
from rotator.steps.checkpoints import Checkpoint
from rotator.steps.consumers import planned
from rotator.steps.context import StepContext, StepResult, read_credential
from rotator.targets.credential import Credential, encode_credential
from rotator.workloads.io import authorize_restart


def run(ctx: StepContext) -> StepResult:
    existing = ctx.store.find_by_rotation(ctx.rotation_id)
    if existing is not None:
        # A crash after the write but before status was saved: adopt it, never write a second.
        return StepResult(
            Outcome.DONE,
            f"adopted store version {existing.version} already written for this rotation",
            {"new_version": existing.version},
        )
    authorize_kube_writes(ctx)
    current = _current_credential(ctx)
    ctx.checkpoint(Checkpoint.GENERATE_BEFORE_WRITE)
    minted = ctx.target.mint(current)
    ctx.checkpoint(Checkpoint.GENERATE_AFTER_MINT)
    written = ctx.store.write_pending(encode_credential(ctx.spec.credential.kind, minted), ctx.rotation_id)
    ctx.checkpoint(Checkpoint.GENERATE_AFTER_WRITE)
    return StepResult(
        Outcome.DONE,
        f"wrote store version {written.version} as pending ({ctx.target.reference(minted)})",
        {"new_version": written.version},
    )


def _current_credential(ctx: StepContext) -> Credential | None:
    """What the target mints beside (the alternating role picks the other one). A current value
    of another shape (adopted, or from before the kind changed) is nothing to mint beside."""
    if not ctx.target.remote or ctx.old_version is None:
        return None
    try:
        return read_credential(ctx, ctx.old_version)
    except PermanentError:
        return None


def authorize_kube_writes(ctx: StepContext) -> None:
    """Before the first store write: will the API server let this rotation write its Secret and
    restart its consumers? Server-side dry runs (one per object, nothing stored) answer with
    the real authorizer and admission; a missing RBAC verb is a KubeForbidden here, so the
    rotation holds with nothing written (Ready=False, reason KubeError, naming the verb) instead
    of promoting a store version that the Secret can not follow."""
    authorize_secret_write(ctx.kube, ctx.policy, ctx.spec.secret.name)
    for target in planned(ctx):  # with restart.auto, the lists that find consumers are asked too
        authorize_restart(ctx.kube, ctx.policy.namespace, target.kind, target.name, ctx.rotation_id, ctx.now)

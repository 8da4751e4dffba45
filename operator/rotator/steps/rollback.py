"""Rollback: the Secret back to the old value, consumers restarted again, the new version failed.

The old credential is never revoked here; it is what the workloads return to.
"""

from __future__ import annotations

import contextlib

from rotator.models import Event, reasons
from rotator.models.keys import ROTATION_ID
from rotator.policy.transitions import Outcome
from rotator.steps.checkpoints import Checkpoint
from rotator.steps.consumers import planned, recorded
from rotator.steps.context import StepContext, StepResult, read_credential, write_managed_secret
from rotator.stores.errors import StoreVersionNotFound
from rotator.targets.shape import secret_values
from rotator.workloads.io import read_workload, restart, target_key
from rotator.workloads.restarter import template_annotations


def rollback_targets(ctx: StepContext) -> list[tuple[str, str]]:
    """Everything that may hold the new value: the planned targets (explicit, and discovered with
    ``restart.auto``) plus any recorded as restarted for this rotation, even if removed from the
    spec or no longer found since."""
    targets: list[tuple[str, str]] = [(t.kind, t.name) for t in planned(ctx)]
    for target in recorded(ctx):
        if (target.kind, target.name) not in targets:
            targets.append((target.kind, target.name))
    return targets


def run(ctx: StepContext) -> StepResult:
    if ctx.old_version is None:
        # Nothing to go back to: keep the only credential there is and report it.
        message = "verification failed and there is no previous credential to restore; kept the new one"
        return StepResult(Outcome.DONE, message, {}, (Event(reasons.ROTATION_ROLLED_BACK, message, True),))
    ctx.checkpoint(Checkpoint.ROLLBACK_BEFORE_SECRET)
    old = read_credential(ctx, ctx.old_version)
    write_managed_secret(ctx, secret_values(ctx.spec, old), ctx.old_version)
    ctx.checkpoint(Checkpoint.ROLLBACK_BEFORE_RESTART)
    restart_id = f"{ctx.rotation_id}-rollback"
    kinds: list[str] = []
    for kind, name in rollback_targets(ctx):
        workload = read_workload(ctx.kube, ctx.policy.namespace, kind, name)
        if workload is None:
            continue  # a vanished target has nothing to roll back
        recorded = target_key(kind, name) in ctx.restarted_targets
        if not recorded and template_annotations(workload).get(ROTATION_ID) not in (
            ctx.rotation_id,
            restart_id,
        ):
            continue  # never rolled for this rotation (failure came earlier): still on the old value
        try:
            if restart(ctx.kube, ctx.policy.namespace, kind, name, restart_id, ctx.now):
                kinds.append(kind)
        except LookupError:
            continue
    if ctx.target.remote and ctx.new_version is not None:
        # The failed credential stops working at the target (its role locked) before its store
        # version is destroyed; a crash after that finds the version gone: already retired.
        with contextlib.suppress(StoreVersionNotFound):
            ctx.target.retire(read_credential(ctx, ctx.new_version), keep=old)
    ctx.checkpoint(Checkpoint.ROLLBACK_BEFORE_STORE)
    if ctx.new_version is not None:
        ctx.store.mark_failed(ctx.new_version, ctx.old_version)
    ctx.checkpoint(Checkpoint.ROLLBACK_AFTER_STORE)
    message = f"rolled back to store version {ctx.old_version}; version {ctx.new_version} marked failed"
    return StepResult(
        Outcome.DONE, message, {}, (Event(reasons.ROTATION_ROLLED_BACK, message, True),), None, tuple(kinds)
    )

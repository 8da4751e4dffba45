"""Rollback: the Secret back to the old value, consumers restarted again, the new version failed.

The old credential is never revoked here; it is what the workloads return to.
"""

from __future__ import annotations

from rotator.policy.transitions import Outcome
from rotator.steps import reasons
from rotator.steps.context import Event, StepContext, StepResult
from rotator.steps.secret_sync import write_secret
from rotator.steps.workload_io import read_workload, restart
from rotator.workloads.restarter import ROTATION_ID, template_annotations


def run(ctx: StepContext) -> StepResult:
    if ctx.old_version is None:
        # Nothing to go back to: keep the only credential there is and report it.
        message = "verification failed and there is no previous credential to restore; kept the new one"
        return StepResult(Outcome.DONE, message, {}, (Event(reasons.ROTATION_ROLLED_BACK, message, True),))
    secret = ctx.spec.secret
    ctx.checkpoint("rollback:before-secret")
    old_value = ctx.store.read_value(ctx.old_version)
    write_secret(ctx.kube, ctx.policy, secret.name, {secret.key: old_value}, ctx.old_version, ctx.rotation_id)
    ctx.checkpoint("rollback:before-restart")
    restart_id = f"{ctx.rotation_id}-rollback"
    kinds: list[str] = []
    for target in ctx.spec.restart.targets:
        workload = read_workload(ctx.kube, ctx.policy.namespace, target.kind, target.name)
        if workload is None:
            continue  # a vanished target has nothing to roll back
        if template_annotations(workload).get(ROTATION_ID) not in (ctx.rotation_id, restart_id):
            continue  # never rolled for this rotation (failure came earlier): still on the old value
        try:
            if restart(ctx.kube, ctx.policy.namespace, target.kind, target.name, restart_id, ctx.now):
                kinds.append(target.kind)
        except LookupError:
            continue
    ctx.checkpoint("rollback:before-store")
    if ctx.new_version is not None:
        ctx.store.mark_failed(ctx.new_version, ctx.old_version)
    ctx.checkpoint("rollback:after-store")
    message = f"rolled back to store version {ctx.old_version}; version {ctx.new_version} marked failed"
    return StepResult(
        Outcome.DONE, message, {}, (Event(reasons.ROTATION_ROLLED_BACK, message, True),), None, tuple(kinds)
    )

"""Step 5: every rollout complete and the new credential is what consumers were handed."""

from __future__ import annotations

from rotator.managed_secret import current_secret_version
from rotator.models import format_duration, reasons
from rotator.policy.transitions import Outcome, verify_deadline_passed
from rotator.steps.consumers import verified
from rotator.steps.context import StepContext, StepResult, gave_up, read_credential
from rotator.targets.base import TargetAuthFailed
from rotator.workloads.health import rollout_health
from rotator.workloads.io import read_workload
from rotator.workloads.restarter import already_restarted


def run(ctx: StepContext) -> StepResult:
    # What the status says while waiting is stable ("... is rolling out"), not the rollout's
    # counts: each look, woken by every event of the rollout, would otherwise rewrite status.
    # The counts (kubectl's words) are what a timeout reports: by then they say where it stuck.
    waiting: list[str] = []
    detail: dict[str, str] = {}
    for target in verified(ctx):  # explicit targets, then the discovered ones restart recorded
        workload = read_workload(ctx.kube, ctx.policy.namespace, target.kind, target.name)
        if workload is None:
            if not target.explicit:
                continue  # a discovered consumer deleted since: no pods left to hold a value
            return gave_up(
                f"{target.kind} {target.name} disappeared during verification", reasons.VERIFY_FAILED
            )
        # Its rollout counts only as seen after the restart that covers this rotation: by this
        # rotation's id, or (a shared workload) a later restart that recorded this rotation as
        # the writer of its Secret. A view without it predates the restart (the watch has not
        # delivered it yet: judged, it would show the last rollout, complete) or the workload
        # was never rolled for this rotation (added to the spec mid-way). Either way its pods
        # may hold the old value, so revoking it would break them: wait (and roll back at the
        # timeout).
        if not already_restarted(workload, ctx.rotation_id, ctx.spec.secret.name):
            if target.key in ctx.restarted_targets:
                waiting.append(f"{target.kind} {target.name} is rolling out")
            else:
                waiting.append(f"{target.kind} {target.name} was not restarted for this rotation")
            continue
        health = rollout_health(target.kind, workload)
        if health.state == "failed":
            return gave_up(health.message, reasons.VERIFY_FAILED)
        if health.state != "complete":
            waiting.append(f"{target.kind} {target.name} is rolling out")
            detail[waiting[-1]] = health.message
    secret = ctx.kube.get_secret(ctx.policy.namespace, ctx.spec.secret.name)
    if current_secret_version(secret) != ctx.new_version:
        waiting.append(f"Secret {ctx.spec.secret.name} does not hold version {ctx.new_version} yet")
    if not waiting and ctx.target.remote:
        # Last, once every consumer runs it: the new credential logs in at its source, or the
        # rotation rolls back to the old one (never revoked before this passed).
        try:
            ctx.target.authenticate(read_credential(ctx, ctx.new_version or ""))
        except TargetAuthFailed as exc:
            return gave_up(f"the new credential does not authenticate: {exc}", reasons.VERIFY_FAILED)
    if not waiting:
        return StepResult(
            Outcome.DONE,
            "all rollouts complete; new credential in place",
            {"verified_at": ctx.now},
        )
    if verify_deadline_passed(ctx.step_started_at, ctx.verify_timeout, ctx.now):
        where = detail.get(waiting[0], waiting[0])
        message = f"verification timed out after {format_duration(ctx.verify_timeout)}: {where}"
        return gave_up(message, reasons.VERIFY_FAILED, Outcome.TIMED_OUT)
    return StepResult(Outcome.WAITING, waiting[0], {}, (), ctx.poll)

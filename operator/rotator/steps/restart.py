"""Step 4: roll every consumer, Reloader-style, at most `restart.maxConcurrent` rollouts at a time.

The consumers are the explicit targets plus, with ``restart.auto``, the discovered ones
(rotator.steps.consumers). A workload another policy already restarted after this rotation wrote
its Secret is not restarted again (rotator.workloads.restarter); it is recorded all the same, so
verify waits for its rollout and rollback restarts it.
"""

from __future__ import annotations

from rotator.models import Event, PermanentError, format_duration, reasons
from rotator.policy.transitions import Outcome, verify_deadline_passed
from rotator.steps.checkpoints import Checkpoint
from rotator.steps.consumers import planned, recorded
from rotator.steps.context import StepContext, StepResult, gave_up
from rotator.workloads.discovery import workload_secret_names
from rotator.workloads.health import rollout_health
from rotator.workloads.io import read_workload, restart
from rotator.workloads.restarter import already_restarted


def run(ctx: StepContext) -> StepResult:
    done = list(ctx.restarted_targets)
    in_flight = 0
    for target in recorded(ctx):
        workload = read_workload(ctx.kube, ctx.policy.namespace, target.kind, target.name)
        if workload is not None and not already_restarted(workload, ctx.rotation_id, ctx.spec.secret.name):
            # A view from before its restart (the watch lags): its rollout has not been seen
            # yet, so it still takes one of the max concurrent places.
            in_flight += 1
            continue
        health = rollout_health(target.kind, workload) if workload is not None else None
        if health is not None and health.state == "failed":
            # Stop spreading a credential that breaks a consumer: roll back now.
            message = f"{target.key} failed its rollout: {health.message}"
            return gave_up(message, reasons.VERIFY_FAILED)
        if health is not None and health.state == "progressing":
            in_flight += 1
    if in_flight and verify_deadline_passed(ctx.step_started_at, ctx.verify_timeout, ctx.now):
        # Throttled rollouts that never finish (no progress deadline on StatefulSets/DaemonSets)
        # would hold the rotation here for ever; verify.timeout bounds this step as well.
        message = f"restarts did not finish within {format_duration(ctx.verify_timeout)}"
        return gave_up(message, reasons.VERIFY_FAILED, Outcome.TIMED_OUT)
    plan = planned(ctx)
    events: list[Event] = []
    kinds: list[str] = []
    restarted: list[str] = []
    gone: set[str] = set()
    for target in plan:
        if target.key in done:
            continue
        if in_flight >= ctx.spec.restart.max_concurrent:
            break
        ctx.checkpoint(Checkpoint.RESTART_BEFORE_PATCH)
        try:
            patched = restart(
                ctx.kube,
                ctx.policy.namespace,
                target.kind,
                target.name,
                ctx.rotation_id,
                ctx.now,
                secret_name=ctx.spec.secret.name,
            )
        except LookupError as exc:
            if target.explicit:
                raise PermanentError(reasons.TARGET_MISSING, str(exc)) from None
            gone.add(target.key)  # discovered, then deleted: nothing left to restart
            continue
        ctx.checkpoint(Checkpoint.RESTART_AFTER_PATCH)
        done.append(target.key)
        in_flight += 1
        if patched is not None:
            kinds.append(target.kind)
            restarted.append(target.key)
            if target.explicit and ctx.spec.secret.name not in workload_secret_names(target.kind, patched):
                events.append(
                    Event(
                        reasons.TARGET_NOT_CONSUMING,
                        f"{target.key} does not reference Secret {ctx.spec.secret.name} in its pod "
                        "template; restarted anyway, check spec.restart.targets",
                        warning=True,
                    )
                )
    if restarted:
        # One Event per run of the step, naming every target it rolled (not one per target).
        events.insert(
            0, Event(reasons.WORKLOAD_RESTARTED, f"restarted {', '.join(restarted)} for the new credential")
        )
    # Counted against the plan, not against `done`: a target removed from the spec mid-rotation
    # must not make another one look restarted.
    remaining = [t for t in plan if t.key not in done and t.key not in gone]
    updates = {"restarted_targets": tuple(done)}
    if remaining:
        total = len(plan) - len(gone)
        return StepResult(
            Outcome.WAITING,
            f"{total - len(remaining)} of {total} targets restarted; throttled",
            updates,
            tuple(events),
            ctx.poll,
            tuple(kinds),
        )
    return StepResult(
        Outcome.DONE, f"{len(done)} targets restarted", updates, tuple(events), None, tuple(kinds)
    )

"""Step 4: roll every consumer, Reloader-style, at most `restart.maxConcurrent` rollouts at a time."""

from __future__ import annotations

from rotator.models import Event, PermanentError, format_duration, reasons
from rotator.policy.transitions import Outcome, verify_deadline_passed
from rotator.steps.checkpoints import Checkpoint
from rotator.steps.context import StepContext, StepResult, gave_up
from rotator.workloads.discovery import workload_secret_names
from rotator.workloads.health import rollout_health
from rotator.workloads.io import read_workload, restart, target_key


def run(ctx: StepContext) -> StepResult:
    done = list(ctx.restarted_targets)
    in_flight = 0
    for target in ctx.spec.restart.targets:
        key = target_key(target.kind, target.name)
        if key in done:
            workload = read_workload(ctx.kube, ctx.policy.namespace, target.kind, target.name)
            health = rollout_health(target.kind, workload) if workload is not None else None
            if health is not None and health.state == "failed":
                # Stop spreading a credential that breaks a consumer: roll back now.
                message = f"{key} failed its rollout: {health.message}"
                return gave_up(message, reasons.VERIFY_FAILED)
            if health is not None and health.state == "progressing":
                in_flight += 1
    if in_flight and verify_deadline_passed(ctx.step_started_at, ctx.verify_timeout, ctx.now):
        # Throttled rollouts that never finish (no progress deadline on StatefulSets/DaemonSets)
        # would hold the rotation here for ever; verify.timeout bounds this step as well.
        message = f"restarts did not finish within {format_duration(ctx.verify_timeout)}"
        return gave_up(message, reasons.VERIFY_FAILED, Outcome.TIMED_OUT)
    events: list[Event] = []
    kinds: list[str] = []
    restarted: list[str] = []
    for target in ctx.spec.restart.targets:
        key = target_key(target.kind, target.name)
        if key in done:
            continue
        if in_flight >= ctx.spec.restart.max_concurrent:
            break
        ctx.checkpoint(Checkpoint.RESTART_BEFORE_PATCH)
        try:
            patched = restart(
                ctx.kube, ctx.policy.namespace, target.kind, target.name, ctx.rotation_id, ctx.now
            )
        except LookupError as exc:
            raise PermanentError(reasons.TARGET_MISSING, str(exc)) from None
        ctx.checkpoint(Checkpoint.RESTART_AFTER_PATCH)
        done.append(key)
        in_flight += 1
        if patched is not None:
            kinds.append(target.kind)
            restarted.append(key)
            if ctx.spec.secret.name not in workload_secret_names(target.kind, patched):
                events.append(
                    Event(
                        reasons.TARGET_NOT_CONSUMING,
                        f"{key} does not reference Secret {ctx.spec.secret.name} in its pod template; "
                        "restarted anyway, check spec.restart.targets",
                        warning=True,
                    )
                )
    if restarted:
        # One Event per run of the step, naming every target it rolled (not one per target).
        events.insert(
            0, Event(reasons.WORKLOAD_RESTARTED, f"restarted {', '.join(restarted)} for the new credential")
        )
    # Counted against the spec, not against `done`: a target removed from the spec mid-rotation
    # must not make another one look restarted.
    remaining = [t for t in ctx.spec.restart.targets if target_key(t.kind, t.name) not in done]
    updates = {"restarted_targets": tuple(done)}
    if remaining:
        return StepResult(
            Outcome.WAITING,
            f"{len(done)} of {len(ctx.spec.restart.targets)} targets restarted; throttled",
            updates,
            tuple(events),
            ctx.poll,
            tuple(kinds),
        )
    return StepResult(
        Outcome.DONE, f"{len(done)} targets restarted", updates, tuple(events), None, tuple(kinds)
    )

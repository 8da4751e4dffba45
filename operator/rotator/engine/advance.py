"""The rotating reconciler: run the current step once, record what it did, move on.

Before the step: a dry run set mid-rotation holds it where it is, the spec is pinned to the
store location and Secret the rotation started with, and a force that arrived meanwhile is
absorbed by the trigger chain's "rotation in progress" link (the one gate for it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Final

from pydantic import SecretStr

from rotator.engine.deps import Deps
from rotator.engine.draft import Draft, Reconciled, persist
from rotator.engine.finish import finish_rotation
from rotator.engine.store import OpenedStore, open_store
from rotator.engine.trigger import decide_and_record
from rotator.logs import SENSITIVE
from rotator.models import (
    ConditionStatus,
    ConditionType,
    PermanentError,
    Phase,
    RotationPolicySpec,
    Step,
    StepTiming,
    reasons,
)
from rotator.policy.scope import pin_secret
from rotator.policy.transitions import Outcome, next_step
from rotator.steps import dual, generate, restart, revoke, rollback, sync, verify
from rotator.steps.checkpoints import Checkpoint
from rotator.steps.context import StepContext, StepResult, gave_up
from rotator.stores.errors import StoreAuthError, StoreConflict, StoreError, StoreUnavailable
from rotator.targets.base import TargetUnavailable
from rotator.targets.opener import TargetContext
from rotator.targets.password import generate_password

STEPS: Final[dict[Step, Callable[[StepContext], StepResult]]] = {
    Step.GENERATE: generate.run,
    Step.DUAL: dual.run,
    Step.SYNC: sync.run,
    Step.RESTART: restart.run,
    Step.VERIFY: verify.run,
    Step.REVOKE: revoke.run,
    Step.ROLLBACK: rollback.run,
}

#: Steps whose successor runs in the same reconcile, with no status write between them: promote,
#: the Secret write, the restart and verify's first look. Each of them is re-runnable from what
#: the store, the Secret and the workload show (promote finds the version already published and
#: its pointers set; sync finds the hash it would write; restart finds its rotation id in the pod
#: template and skips the target; verify only reads), so a crash anywhere in the chain resumes at
#: dual and repeats it harmlessly: a record in between would cost a status write and a reconcile
#: each, and buy nothing. What a later side effect depends on is still written first: the
#: rotation id before the store is written (start), the new version before it is promoted
#: (generate), the restarted targets before verify's look can pass (verify's first look comes
#: right after the restart patch, in a view that shows the rollout only begun, so it waits and
#: the status write records both), and verifiedAt before revoke destroys anything (below).
CHAINED: Final = frozenset({Step.DUAL, Step.SYNC, Step.RESTART})

#: Steps past the point of no return: a refusal there must not turn into a rollback (revoke: the
#: new credential is verified and in use; rollback: it is the way out already).
_NO_ROLLBACK: Final = (Step.REVOKE, Step.ROLLBACK)


def advance_rotation(draft: Draft, spec: RotationPolicySpec, deps: Deps) -> Reconciled:
    rotation = draft.rotation
    if spec.dry_run:
        message = (
            f"dryRun set during rotation {rotation.id}: holding at step {rotation.step} until it is unset"
        )
        draft.condition(ConditionType.ROTATING, True, reasons.DRY_RUN, message, event_on_change=True)
        return persist(deps.kube, draft, deps.settings.idle_resync)
    spec = pin_secret(spec, rotation.secret_name)
    opened = open_store(draft, spec, deps, pinned=rotation.store_location or {})
    _absorb_force(draft, spec, opened.location)
    result = _run_step(draft, spec, opened, deps)
    return _record(draft, spec, result, deps, opened)


def _absorb_force(draft: Draft, spec: RotationPolicySpec, location: Mapping[str, str]) -> None:
    """A force during a rotation is covered by it: recorded as handled, reported once."""
    decision = decide_and_record(draft, spec, location, store_has_value=True)
    if decision.force_value_to_record:
        draft.event(reasons.FORCE_IGNORED, decision.message)


def _run_step(draft: Draft, spec: RotationPolicySpec, opened: OpenedStore, deps: Deps) -> StepResult:
    rotation = draft.rotation
    step = rotation.step
    target_context = TargetContext(
        rotation.id,
        aws=lambda: deps.aws_session(draft.ref, opened.resolved),
        vault=lambda: deps.open_vault_session(draft.ref, opened.resolved),
    )
    ctx = StepContext(
        policy=draft.ref,
        spec=spec,
        rotation_id=rotation.id,
        old_version=rotation.old_version,
        new_version=rotation.new_version,
        step_started_at=rotation.step_started_at or draft.now,
        verified_at=rotation.verified_at,
        restarted_targets=rotation.restarted_targets,
        store=opened.store,
        kube=deps.kube,
        now=draft.now,
        target=deps.open_target(deps.kube, draft.ref, spec, lambda: _generate(spec), target_context),
        checkpoint=deps.checkpoint,
        verify_timeout=spec.verify.timeout_delta,
        grace_period=spec.revoke.grace_period_delta,
        poll=deps.settings.poll,
    )
    started = time.monotonic()
    try:
        result = STEPS[step](ctx)
        deps.checkpoint(Checkpoint.before_persist(step))
    except PermanentError as exc:
        if step in _NO_ROLLBACK:
            raise
        result = gave_up(str(exc), exc.reason)
    except (StoreUnavailable, StoreConflict, StoreAuthError, TargetUnavailable):
        raise
    except StoreError as exc:
        # A store refusal no retry fixes (a version gone, an invariant): before revoke the safe
        # way out is rollback to the old credential, which was never touched.
        if step in _NO_ROLLBACK:
            raise
        result = gave_up(str(exc), reasons.STORE_ERROR)
    finally:
        deps.metrics.step_duration.labels(step=str(step)).observe(time.monotonic() - started)
    return result


def _record(
    draft: Draft, spec: RotationPolicySpec, result: StepResult, deps: Deps, opened: OpenedStore
) -> Reconciled:
    """Fold the step's result into status and decide, from the transition table, what is next
    (run at once, for a step in :data:`CHAINED`)."""
    step = draft.rotation.step
    ready = draft.status.condition(ConditionType.READY)
    if ready is None or ready.status != ConditionStatus.TRUE:
        # The step ran: what kept it from running (an outage, a refused login, an error) is over.
        message = f"rotation {draft.rotation.id} in progress: {step} ran"
        # An Event only for a recovery, not for the first Ready of a new policy's first rotation.
        draft.condition(ConditionType.READY, True, reasons.READY, message, event_on_change=ready is not None)
    draft.set_rotation(**result.updates)
    draft.events.extend(result.events)
    for kind in result.restarted_kinds:
        deps.metrics.restarts_total.labels(kind=kind).inc()
    if result.outcome is Outcome.WAITING:
        draft.set_rotation(last_error=None)
        draft.condition(ConditionType.ROTATING, True, reasons.ROTATING, f"{step}: {result.message}")
        requeue = result.requeue_after if result.requeue_after is not None else deps.settings.poll
        return persist(deps.kube, draft, min(requeue, deps.settings.idle_resync))
    rotation = draft.rotation
    step_started = rotation.step_started_at or draft.now
    seconds = round(max(0.0, (draft.now - step_started).total_seconds()), 3)
    draft.set_rotation(steps=(*(rotation.steps or ()), StepTiming(step=step, seconds=seconds)))
    following = next_step(step, result.outcome)
    if following is None:
        return finish_rotation(draft, spec, step, result, deps)
    draft.set_rotation(
        step=following,
        step_started_at=draft.now,
        attempt=0,
        last_error=draft.rotation.last_error if following is Step.ROLLBACK else None,
    )
    if following is Step.ROLLBACK:
        draft.set(phase=Phase.ROLLING_BACK)
        draft.condition(ConditionType.DEGRADED, True, reasons.VERIFY_FAILED, result.message)
    draft.condition(
        ConditionType.ROTATING, True, reasons.ROTATING, f"{step} done: {result.message}; next: {following}"
    )
    if _chained(step, following, spec):
        return _record(draft, spec, _run_step(draft, spec, opened, deps), deps, opened)
    # No Event per step (status.rotation.steps and the Rotating condition show each one): a
    # rotation posts RotationStarted, WorkloadRestarted and its result, plus every Warning.
    return persist(deps.kube, draft, 0.0)


def _chained(step: Step, following: Step, spec: RotationPolicySpec) -> bool:
    """Run ``following`` in this reconcile? For a :data:`CHAINED` step; and for verify passed
    with no grace period: revoke runs at once, on the verification this very reconcile made
    (a crash before its status write resumes at verify, which must pass again before anything
    is revoked). With a grace period, verifiedAt is written first: the wait is timed from it."""
    if following is Step.ROLLBACK:
        return False
    if step is Step.VERIFY:
        return following is Step.REVOKE and spec.revoke.grace_period_delta <= timedelta(0)
    return step in CHAINED


def _generate(spec: RotationPolicySpec) -> SecretStr:
    made = spec.credential.password or spec.credential.postgres_role
    assert made is not None, "the spec model requires exactly one credential kind"
    value = generate_password(made.length, made.alphabet)
    SENSITIVE.add(value.get_secret_value())  # the logs' second belt: mask it wherever it shows up
    return value

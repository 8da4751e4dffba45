"""Finishing a rotation: history, the result's conditions, metrics and the pause after failure."""

from __future__ import annotations

from rotator.engine.deps import Deps
from rotator.engine.draft import Draft, Reconciled, persist
from rotator.engine.schedule import refresh_schedule
from rotator.models import (
    HISTORY_LIMIT,
    ConditionType,
    HistoryEntry,
    Phase,
    RotationPolicySpec,
    RotationResult,
    Step,
    reasons,
)
from rotator.policy.transitions import result_of
from rotator.policy.triggers import idle_message
from rotator.steps.context import StepResult

_METRIC_RESULT = {RotationResult.SUCCEEDED: "succeeded", RotationResult.ROLLED_BACK: "rolled_back"}


def finish_rotation(
    draft: Draft, spec: RotationPolicySpec, step: Step, result: StepResult, deps: Deps
) -> Reconciled:
    rotation = draft.rotation
    outcome = result_of(step, result.outcome) or RotationResult.FAILED
    succeeded = outcome is RotationResult.SUCCEEDED
    # Past verify the new credential is current in the store, even if revoking the old failed.
    verified = succeeded or step is Step.REVOKE
    version = rotation.new_version if verified else rotation.old_version
    entry = HistoryEntry(
        id=rotation.id,
        result=outcome,
        reason=rotation.reason,
        started_at=rotation.started_at,
        finished_at=draft.now,
        version=version,
        steps=rotation.steps,
    )
    draft.set(
        rotation=None,
        history=(entry, *draft.status.history)[:HISTORY_LIMIT],
        last_result=outcome,
        phase=Phase.FAILED if outcome is RotationResult.FAILED else Phase.IDLE,
    )
    labels = draft.labels
    deps.metrics.rotations_total.labels(
        **labels, result=_METRIC_RESULT.get(outcome, "failed"), reason=str(rotation.reason or "")
    ).inc()
    deps.metrics.in_progress.labels(**labels).set(0)
    draft.condition(ConditionType.ROTATING, False, reasons.IDLE, "no rotation in progress")
    if succeeded:
        draft.set(
            current_version=version,
            retry_not_before=None,
            credential_created_at=draft.now,
            last_rotation_time=draft.now,
            next_rotation_time=None,
        )
        if rotation.credential_spec_hash:
            # Only a credential that made it counts as "the spec was handled".
            draft.set(credential_spec_hash=rotation.credential_spec_hash)
        deps.metrics.last_success.labels(**labels).set(draft.now.timestamp())
        draft.condition(
            ConditionType.DEGRADED, False, reasons.ROTATION_SUCCEEDED, f"rotation {rotation.id} succeeded"
        )
        revoked = (
            f"old credential (version {rotation.old_version}) revoked"
            if rotation.old_version
            else "no old credential to revoke"
        )
        draft.event(
            reasons.ROTATION_SUCCEEDED,
            f"rotation {rotation.id} succeeded: new credential written to the store as version "
            f"{version}, made current, synced to Secret {spec.secret.name}; {revoked}",
        )
        due = refresh_schedule(draft, spec, deps.metrics)
        # What the idle look right after will say too, so it has nothing to write.
        draft.condition(ConditionType.READY, True, reasons.READY, idle_message(due))
        return persist(deps.kube, draft, 0.0)
    if version:
        draft.set(current_version=version)
    message = f"rotation {rotation.id} {outcome}: {rotation.last_error or result.message}"
    rolled_back = outcome is RotationResult.ROLLED_BACK
    reason = reasons.ROTATION_ROLLED_BACK if rolled_back else reasons.ROTATION_FAILED
    draft.condition(ConditionType.DEGRADED, True, reason, message)
    draft.event(reason, message, warning=True)
    draft.set(retry_not_before=draft.now + deps.settings.pause_after_failure)
    return persist(deps.kube, draft, deps.settings.idle_resync)

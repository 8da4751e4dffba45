"""Starting a rotation: allocate its id and pin what it is bound to, in status, before any side
effect. The id is what makes every later write idempotent (DESIGN §1)."""

from __future__ import annotations

from collections.abc import Mapping

from rotator.engine.deps import Deps
from rotator.engine.draft import Draft, Reconciled, persist
from rotator.models import ConditionType, Phase, RotationPolicySpec, RotationState, Step, reasons
from rotator.policy.scope import credential_spec_hash
from rotator.policy.triggers import Decision
from rotator.steps.checkpoints import Checkpoint
from rotator.stores.base import StoredVersion, VersionState


def start_rotation(
    draft: Draft,
    spec: RotationPolicySpec,
    decision: Decision,
    current: StoredVersion | None,
    location: Mapping[str, str],
    deps: Deps,
) -> Reconciled:
    rotation_id = deps.new_rotation_id()
    # A destroyed current version is nothing to fall back to (and nothing to revoke).
    old = current.version if current is not None and current.state != VersionState.DESTROYED else None
    rotation = RotationState(
        id=rotation_id,
        step=Step.GENERATE,
        reason=decision.reason,
        started_at=draft.now,
        step_started_at=draft.now,
        old_version=old,
        # Pinned for the whole rotation: versions in this object belong to this path and Secret.
        store_location=dict(location),
        secret_name=spec.secret.name,
        credential_spec_hash=credential_spec_hash(spec, location),
    )
    draft.set(rotation=rotation, phase=Phase.ROTATING)
    draft.condition(
        ConditionType.ROTATING, True, reasons.ROTATING, f"rotation {rotation_id} started: {decision.message}"
    )
    draft.event(
        reasons.ROTATION_STARTED, f"rotation {rotation_id} started ({decision.reason}): {decision.message}"
    )
    deps.metrics.in_progress.labels(**draft.labels).set(1)
    reconciled = persist(deps.kube, draft, 0.0)
    deps.checkpoint(Checkpoint.START_AFTER_PERSIST)
    return reconciled

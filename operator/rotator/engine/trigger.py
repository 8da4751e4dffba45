"""Asking the trigger chain, from any reconciler: the one place a decision is made and a force
it consumed (acted on, absorbed by a running rotation, ignored, or already satisfied) is recorded
as handled."""

from __future__ import annotations

from collections.abc import Mapping

from rotator.engine.draft import Draft
from rotator.engine.facts import trigger_inputs
from rotator.models import RotationPolicySpec, reasons
from rotator.policy.triggers import Decision, decide


def decide_and_record(
    draft: Draft, spec: RotationPolicySpec, location: Mapping[str, str], *, store_has_value: bool
) -> Decision:
    decision = peek(draft, spec, location, store_has_value=store_has_value)
    if decision.force_value_to_record:
        draft.set(last_handled_force_rotate=decision.force_value_to_record)
    if decision.force_note and draft.status.rotation is None:
        # Mid-rotation the advance reconciler reports every consumed force itself.
        draft.event(reasons.FORCE_IGNORED, decision.force_note)
    return decision


def peek(
    draft: Draft, spec: RotationPolicySpec, location: Mapping[str, str], *, store_has_value: bool
) -> Decision:
    """The chain's decision, recording nothing (to ask whether a look at the store is needed)."""
    inputs = trigger_inputs(
        spec,
        draft.status,
        draft.annotations,
        seed=draft.ref.owner,
        now=draft.now,
        store_has_value=store_has_value,
        location=location,
    )
    return decide(inputs, draft.now)

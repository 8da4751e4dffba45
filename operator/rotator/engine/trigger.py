"""Asking the trigger chain, from any reconciler: the one place a decision is made and a force
it consumed (acted on, absorbed by a running rotation, or ignored) is recorded as handled."""

from __future__ import annotations

from collections.abc import Mapping

from rotator.engine.draft import Draft
from rotator.engine.facts import trigger_inputs
from rotator.models import RotationPolicySpec
from rotator.policy.triggers import Decision, decide


def decide_and_record(
    draft: Draft, spec: RotationPolicySpec, location: Mapping[str, str], *, store_has_value: bool
) -> Decision:
    inputs = trigger_inputs(
        spec,
        draft.status,
        draft.annotations,
        seed=draft.ref.owner,
        now=draft.now,
        store_has_value=store_has_value,
        location=location,
    )
    decision = decide(inputs, draft.now)
    if decision.force_value_to_record:
        draft.set(last_handled_force_rotate=decision.force_value_to_record)
    return decision

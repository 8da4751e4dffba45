"""The status write: an RFC 7386 merge patch of exactly what changed."""

from __future__ import annotations

from rotator.engine.draft import merge_patch
from rotator.models.status import RotationPolicyStatus
from tests.engine.harness import GRACE, EngineBench


def test_unchanged_is_an_empty_patch() -> None:
    state = {"phase": "Idle", "rotation": {"id": "r1", "step": "sync"}, "history": [{"id": "r0"}]}
    assert merge_patch(state, state) == {}


def test_removed_fields_become_null_at_any_depth() -> None:
    before = {"phase": "Rotating", "rotation": {"id": "r1", "lastError": "x"}, "nextRotationTime": "t"}
    after = {"phase": "Rotating", "rotation": {"id": "r1"}}
    assert merge_patch(before, after) == {"rotation": {"lastError": None}, "nextRotationTime": None}


def test_lists_are_replaced_whole_and_new_objects_sent_whole() -> None:
    before = {"history": [{"id": "r0"}]}
    after = {"history": [{"id": "r1"}, {"id": "r0"}], "rotation": {"id": "r2", "step": "generate"}}
    assert merge_patch(before, after) == after


def test_the_patch_applied_gives_the_target() -> None:
    def apply(target: dict[str, object], patch: dict[str, object]) -> dict[str, object]:
        result = dict(target)
        for key, value in patch.items():
            if value is None:
                result.pop(key, None)
            elif isinstance(value, dict) and isinstance(result.get(key), dict):
                result[key] = apply(result[key], value)  # type: ignore[arg-type]
            else:
                result[key] = value
        return result

    before = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1], "f": "gone"}
    after = {"a": 2, "b": {"c": 2, "x": {"y": 1}}, "e": [1, 2]}
    assert apply(before, merge_patch(before, after)) == after


def test_a_status_dumped_validated_and_dumped_again_is_the_same_json(bench: EngineBench) -> None:
    # persist takes the patch from the first dump: it must be what the validated status dumps to
    bench.seed(revoke=GRACE)
    bench.rotate_to_revoke()  # mid-rotation: rotation state, step timings, conditions
    mid = bench.status().to_patch()
    bench.rotate_to_end()
    done = bench.status().to_patch()  # history with its step timeline, next rotation time
    assert mid["rotation"]["steps"]
    assert done["history"][0]["steps"]
    for wire in (mid, done):
        assert RotationPolicyStatus.model_validate(wire).to_patch() == wire

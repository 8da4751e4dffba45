"""No crash loop without a condition, within one reconcile (issue 9, item 3).

The fuzz test (tests/integration/test_fuzz_specs.py) gives the whole operator 90 s; here the
engine alone is held to the issue's words: a new policy whose spec the models refuse, or whose
reconcile raises something nothing foresaw, has ``Ready=False`` with the reason in the *first*
status write it ever gets, and exactly one Event, from that one reconcile.
"""

from __future__ import annotations

from typing import Any

import pytest

from rotator import engine
from rotator.models import PolicyRef, reasons
from tests.engine.harness import NS, POLICY, CountingKube, EngineBench

#: Durations the CRD's pattern lets through but the models bound (what the arithmetic can hold,
#: and what makes sense): each is refused naming its field.
TOO_LONG = {
    "spec.schedule.maxAge": {"schedule": {"maxAge": "87601h"}},
    "spec.revoke.gracePeriod": {"revoke": {"gracePeriod": "99999h"}},
    "spec.verify.timeout": {"verify": {"timeout": "25h"}},
}


def first_write(bench: EngineBench) -> dict[str, Any]:
    """The one status write the reconcile made, as sent, its conditions by type."""
    kube = bench.kube
    assert isinstance(kube, CountingKube)
    (patch,) = kube.status_patches
    return {c["type"]: c for c in patch["conditions"]}


def stored_spec(bench: EngineBench) -> dict[str, Any]:
    obj = bench.kube.get_policy(NS, POLICY)
    assert obj is not None
    spec: dict[str, Any] = obj["spec"]
    return spec


@pytest.mark.parametrize("field", TOO_LONG)
def test_a_spec_the_models_refuse_is_ready_false_in_the_first_write(bench: EngineBench, field: str) -> None:
    bench.seed()
    spec = {**stored_spec(bench), **TOO_LONG[field]}  # as an older CRD would have stored it
    run = bench.reconcile(spec=spec)
    assert run.writes == 1
    ready = first_write(bench)["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", reasons.INVALID_SPEC)
    assert ready["message"].startswith(f"{field}: must be at most ")
    assert [(reason, warning) for reason, _, warning in run.events] == [(reasons.INVALID_SPEC, True)]
    assert run.status.rotation is None
    assert bench.store.versions == {}, "nothing done on a spec that cannot be read"
    again = bench.reconcile(spec=spec)
    assert (again.writes, again.events) == (0, []), "the next look repeats nothing"


def raise_unexpected(*_: object) -> Any:
    raise OverflowError("date value out of range: s3cr3t-looking-detail")


@pytest.mark.parametrize("where", ["resolve_store", "open_store", "new_rotation_id"])
def test_an_unexpected_exception_is_ready_false_in_the_first_write(bench: EngineBench, where: str) -> None:
    """Raised while resolving the store, opening it, or starting the rotation (before its
    persist): each a first reconcile that ends in ReconcileError, one Event, a backoff."""
    bench.seed()
    run = bench.reconcile(**{where: raise_unexpected})
    assert run.writes == 1
    ready = first_write(bench)["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", reasons.RECONCILE_ERROR)
    assert "unexpected OverflowError" in ready["message"]
    assert "s3cr3t" not in ready["message"]
    assert [(reason, warning) for reason, _, warning in run.events] == [(reasons.RECONCILE_ERROR, True)]
    assert "s3cr3t" not in run.events[0][1]
    assert run.temporary
    ref = PolicyRef(NS, POLICY, "")
    assert run.requeue == engine.backoff(ref, 0, bench.settings) > 0, "its retry backs off"
    assert run.status.rotation is None
    assert bench.store.versions == {}
    retried = bench.reconcile(failures=1, **{where: raise_unexpected})
    assert retried.events == [], "one Event per streak"
    assert retried.requeue == engine.backoff(ref, 1, bench.settings)


@pytest.mark.parametrize(
    ("case", "spec", "status", "only_a_condition"),
    [
        ("valid, new", None, None, False),
        ("spec the models refuse", TOO_LONG["spec.verify.timeout"], None, True),
        ("spec missing its secret", {"secret": None}, None, True),
        ("status hand-edited", None, {"rotation": {"step": "no-such-step"}}, True),
    ],
)
def test_the_admission_precheck_agrees_with_the_reconcile(
    bench: EngineBench,
    case: str,
    spec: dict[str, Any] | None,
    status: dict[str, Any] | None,
    only_a_condition: bool,
) -> None:
    """``cannot_start_rotation`` lets a look skip the wait for a rotation slot (handlers,
    rotator.admission): true exactly when the reconcile writes a condition and starts nothing."""
    bench.seed()
    obj = bench.kube.get_policy(NS, POLICY)
    assert obj is not None
    stored = obj["spec"]
    given_spec = {**stored, **spec} if spec is not None else stored
    given = {**obj, "spec": given_spec, **({"status": status} if status is not None else {})}
    assert engine.cannot_start_rotation(given) is only_a_condition, case
    run = bench.reconcile(spec=given_spec, status=status)
    assert (run.status.rotation is None) is only_a_condition, case
    if only_a_condition:
        assert bench.store.versions == {}, "nothing written to the store"
        assert [warning for _, _, warning in run.events] == [True], "one warning Event names it"

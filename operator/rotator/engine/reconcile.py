"""``reconcile(policy, deps, now)``: observe, decide, run at most one step, write status.

The entry point and dispatcher. It reads the typed status (a status it cannot read is held, not
guessed at: acting on a guess could revoke the wrong thing), validates the spec (an invalid one
is a condition naming the field), then hands over to exactly one reconciler: ``advance`` while a
rotation runs, ``idle`` otherwise. Whatever they raise becomes a condition or a backoff in
``failures``. Synchronous like the clients beneath it; the handlers run it in a worker thread.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from rotator.engine.advance import advance_rotation
from rotator.engine.deps import Deps
from rotator.engine.draft import Draft, Reconciled, StatusConflict, persist, write_status
from rotator.engine.failures import backoff, handle_failure
from rotator.engine.idle import reconcile_idle
from rotator.models import (
    Condition,
    ConditionType,
    InvalidSpecError,
    Phase,
    PolicyRef,
    RotationPolicySpec,
    RotationPolicyStatus,
    parse_spec,
    reasons,
)

log = logging.getLogger("rotator.engine")


def reconcile(
    obj: Mapping[str, Any], deps: Deps, now: datetime, *, failures: int = 0, resync: bool = True
) -> Reconciled:
    """One reconcile of one policy object. Never raises for bad input; raises only when even the
    status write failed (the caller backs off with :func:`rotator.engine.failures.backoff`).

    ``failures`` is how many reconciles in a row ended temporarily (``Reconciled.temporary``):
    an idle policy's backoff grows with it. ``resync`` false (a look woken by a watch, or right
    after a rotation) lets an idle policy with a settled Secret skip the store (``idle``).

    A status write that meets a newer resourceVersion (:class:`StatusConflict`) drops this
    reconcile's decision and asks to look again: at once the first time, then with the backoff
    (temporary, so the caller's count grows and a policy rewritten in a loop cannot spin us).
    """
    try:
        return _reconcile(obj, deps, now, failures, resync)
    except StatusConflict as conflict:
        meta = obj.get("metadata") or {}
        ref = PolicyRef(meta["namespace"], meta["name"], meta.get("uid", ""))
        again = 0.0 if failures == 0 else backoff(ref, failures - 1, deps.settings)
        log.debug("%s changed since it was read; its decision is dropped, looking again", ref.owner)
        return Reconciled(again, [], conflict.before, temporary=True, stale=True)


def cannot_start_rotation(obj: Mapping[str, Any]) -> bool:
    """Whether a reconcile of ``obj`` could only write a condition, never start a rotation: its
    status cannot be read (held) or its spec is invalid (named). Such a look needs no rotation
    slot, so it need not wait for one (``rotator.admission``): a burst of bad policies gets its
    conditions at once, not behind a wave of rotations. Pure; cheap next to a reconcile."""
    try:
        RotationPolicyStatus.from_raw(obj.get("status") or {})
    except ValidationError:
        return True
    try:
        parse_spec(obj.get("spec") or {})
    except InvalidSpecError:
        return True
    return False


def _reconcile(obj: Mapping[str, Any], deps: Deps, now: datetime, failures: int, resync: bool) -> Reconciled:
    meta = obj.get("metadata") or {}
    ref = PolicyRef(meta["namespace"], meta["name"], meta.get("uid", ""))
    generation = int(meta.get("generation") or 0)
    annotations: Mapping[str, str] = meta.get("annotations") or {}
    raw_status = obj.get("status") or {}
    version = str(meta.get("resourceVersion") or "")
    try:
        status = RotationPolicyStatus.from_raw(raw_status)
    except ValidationError as exc:
        return _hold_unreadable_status(ref, generation, annotations, raw_status, exc, deps, now, version)
    draft = Draft(ref, generation, annotations, status, now, resource_version=version)
    spec: RotationPolicySpec | None = None
    try:
        spec = parse_spec(obj.get("spec") or {})
    except InvalidSpecError as exc:
        draft.condition(ConditionType.READY, False, reasons.INVALID_SPEC, str(exc), event_on_change=True)
        if draft.status.phase is None:
            draft.set(phase=Phase.IDLE)
        return persist(deps.kube, draft, None)
    try:
        if draft.status.rotation is not None:
            return advance_rotation(draft, spec, deps)
        return reconcile_idle(draft, spec, deps, resync=resync)
    except StatusConflict:
        raise  # not a failure of the step: the decision is stale, see reconcile()
    except Exception as exc:
        return handle_failure(draft, spec, deps, exc, failures)


def _hold_unreadable_status(
    ref: PolicyRef,
    generation: int,
    annotations: Mapping[str, str],
    raw_status: Mapping[str, Any],
    exc: ValidationError,
    deps: Deps,
    now: datetime,
    version: str,
) -> Reconciled:
    """A hand-edited status: say where it is wrong, touch nothing else, look again later."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    message = f"status.{where} is not usable ({first['msg']}); fix or remove it"
    conditions: tuple[Condition, ...] = ()
    with contextlib.suppress(ValidationError):  # broken conditions too: start them afresh
        conditions = RotationPolicyStatus.from_raw({"conditions": raw_status.get("conditions")}).conditions
    draft = Draft(ref, generation, annotations, RotationPolicyStatus(conditions=conditions), now, version)
    draft.condition(ConditionType.READY, False, reasons.INVALID_STATUS, message, event_on_change=True)
    patch = {"conditions": [c.to_patch() for c in draft.status.conditions], "observedGeneration": generation}
    write_status(deps.kube, draft, patch)
    return Reconciled(
        deps.settings.permanent_error_recheck, draft.events, draft.status, written=draft.written
    )

"""The dry-run reconciler: say what a rotation would do, and touch nothing."""

from __future__ import annotations

from rotator.engine.deps import Deps
from rotator.engine.draft import Draft, Reconciled, persist
from rotator.engine.store import OpenedStore
from rotator.engine.trigger import decide_and_record
from rotator.models import ConditionType, DryRunReport, Phase, RotationPolicySpec, reasons


def report_dry_run(draft: Draft, spec: RotationPolicySpec, opened: OpenedStore, deps: Deps) -> Reconciled:
    # A force is consumed here too: turning dryRun off later must not act on an old request.
    has_value = opened.store.current() is not None
    decision = decide_and_record(draft, spec, opened.location, store_has_value=has_value)
    if decision.rotate:
        message = f"dry run: would rotate ({decision.reason}): {decision.message}"
    else:
        message = f"dry run: no rotation: {decision.message}"
    previous = draft.status.last_dry_run
    if previous is None or previous.message != message:
        draft.event(reasons.DRY_RUN, message)
    report = DryRunReport(
        at=draft.now,
        would_rotate=decision.rotate,
        reason=str(decision.reason) if decision.reason else "",
        message=message,
    )
    draft.set(last_dry_run=report, phase=Phase.IDLE)
    draft.condition(ConditionType.READY, True, reasons.DRY_RUN, message)
    return persist(deps.kube, draft, deps.settings.idle_resync)

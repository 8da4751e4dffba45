"""The dry-run reconciler: say what a rotation would do, and touch nothing."""

from __future__ import annotations

from rotator.engine.deps import Deps
from rotator.engine.draft import Draft, Reconciled, persist
from rotator.engine.schedule import export_held
from rotator.engine.store import OpenedStore
from rotator.engine.trigger import decide_and_record
from rotator.models import ConditionType, DryRunReport, Phase, RotationPolicySpec, reasons


def report_dry_run(draft: Draft, spec: RotationPolicySpec, opened: OpenedStore, deps: Deps) -> Reconciled:
    """Ready's message says what the dry run decides now; ``status.lastDryRun`` keeps the latest
    decision that *would have rotated*, with its time.

    A forced dry run decides "would rotate" once and then, the force being handled, "no rotation"
    at the next look seconds later: the report users look for is the first, so a "no rotation"
    never replaces a "would rotate" (it is recorded only while nothing would have rotated yet).
    """
    # A force is consumed here too: turning dryRun off later must not act on an old request.
    has_value = opened.store.current() is not None
    decision = decide_and_record(draft, spec, opened.location, store_has_value=has_value)
    if decision.rotate:
        message = f"dry run: would rotate ({decision.reason}): {decision.message}"
    else:
        message = f"dry run: no rotation: {decision.message}"
    ready = draft.status.condition(ConditionType.READY)
    if ready is None or ready.reason != reasons.DRY_RUN or ready.message != message:
        event = message
        if decision.force_value_to_record:
            event += "; the force is recorded as handled: turning dryRun off will not rotate for it"
        draft.event(reasons.DRY_RUN, event)
    previous = draft.status.last_dry_run
    keep = previous is not None and previous.would_rotate and not decision.rotate
    # The same decision again keeps the time it was first made (and costs no status write).
    if not keep and (previous is None or previous.message != message):
        reason = str(decision.reason) if decision.reason else ""
        report = DryRunReport(at=draft.now, would_rotate=decision.rotate, reason=reason, message=message)
        draft.set(last_dry_run=report)
    draft.set(phase=Phase.IDLE)
    export_held(draft, spec, deps.metrics)
    draft.condition(ConditionType.READY, True, reasons.DRY_RUN, message)
    return persist(deps.kube, draft, deps.settings.idle_resync)

"""What a failed reconcile becomes: a retry with jittered backoff, or a condition a human reads.

The one owner of retry timing. Temporary failures (store or API unreachable, a conflict) back
off exponentially with jitter (:mod:`rotator.policy.backoff`), seeded by the policy so that many
policies failing against one store spread their retries instead of knocking together. The
attempt count lives in ``status.rotation.attempt`` mid-rotation (it survives restarts) and, for
an idle policy, in the caller's count of temporary results in a row.
"""

from __future__ import annotations

import logging
from typing import Final

from rotator.engine.deps import Deps
from rotator.engine.draft import Draft, Reconciled, persist
from rotator.kube import KubeConflict, KubeError, KubeUnavailable
from rotator.models import ConditionType, PermanentError, PolicyRef, RotationPolicySpec, Settings, reasons
from rotator.policy.backoff import retry_delay
from rotator.stores.errors import (
    StoreAuthError,
    StoreConflict,
    StoreError,
    StoreMountError,
    StoreOwnershipError,
    StoreUnavailable,
)

log = logging.getLogger("rotator.engine")

TEMPORARY: Final = (StoreUnavailable, KubeUnavailable, KubeConflict, StoreConflict, StoreAuthError)


def backoff(policy: PolicyRef, attempt: int, settings: Settings) -> float:
    """Seconds before retry ``attempt`` (0 = the first retry) of this policy."""
    return retry_delay(attempt, base=settings.backoff_base, cap=settings.backoff_cap, seed=policy.owner)


def handle_failure(
    draft: Draft, spec: RotationPolicySpec | None, deps: Deps, exc: Exception, failures: int
) -> Reconciled:
    """Turn an exception out of a reconciler into status, Events and a requeue time."""
    if isinstance(exc, TEMPORARY):
        if isinstance(exc, StoreAuthError) and spec is not None:
            # An expired or revoked Vault token: drop the session, log in again after a backoff.
            deps.store_auth_failed(draft.ref)
        return _temporary(draft, deps, exc, failures)
    recheck = deps.settings.permanent_error_recheck
    if isinstance(exc, StoreOwnershipError):
        draft.condition(ConditionType.READY, False, reasons.STORE_NOT_OWNED, str(exc), event_on_change=True)
        return persist(deps.kube, draft, recheck)
    if isinstance(exc, PermanentError):
        draft.condition(ConditionType.READY, False, exc.reason, str(exc), event_on_change=True)
        if draft.status.rotation is not None:
            draft.condition(ConditionType.DEGRADED, True, exc.reason, str(exc))
        return persist(deps.kube, draft, recheck)
    if isinstance(exc, StoreError | KubeError):
        reason = reasons.KUBE_ERROR if isinstance(exc, KubeError) else reasons.STORE_ERROR
        if isinstance(exc, StoreMountError):
            reason = reasons.STORE_INVALID  # the admin's kvMount is not KV v2: the store is wrong
        draft.condition(ConditionType.READY, False, reason, str(exc), event_on_change=True)
        return persist(deps.kube, draft, recheck)
    # A bug or an input nothing above foresaw: say so in status, never loop silently. Only the
    # type goes into status and Events: an unexpected exception's text may quote what it handled.
    log.error("reconcile of %s failed unexpectedly", draft.ref.owner, exc_info=exc)
    message = f"unexpected {type(exc).__name__} (see the operator log); retrying with backoff"
    draft.condition(ConditionType.READY, False, reasons.RECONCILE_ERROR, message, event_on_change=True)
    return _temporary(draft, deps, exc, failures, announce=False)


def _temporary(
    draft: Draft, deps: Deps, exc: Exception, failures: int, *, announce: bool = True
) -> Reconciled:
    """Retry later with backoff; ``announce`` posts the outage's first Event and sets Ready."""
    text = str(exc) if announce else type(exc).__name__
    rotation = draft.status.rotation
    if rotation is not None:
        attempt = rotation.attempt + 1
        draft.set_rotation(attempt=attempt, last_error=f"{type(exc).__name__}: {text}")
        first_of_outage = attempt == 1
    else:
        attempt = failures
        ready = draft.status.condition(ConditionType.READY)
        first_of_outage = ready is None or ready.message != text
    if announce:
        # One Event per outage, not one per retry: the condition and lastError carry the rest.
        if first_of_outage:
            draft.event(reasons.STEP_RETRYING, f"temporary failure, will retry: {text}", warning=True)
        if rotation is None:
            draft.condition(ConditionType.READY, False, _temporary_reason(exc), text)
    return persist(deps.kube, draft, backoff(draft.ref, attempt, deps.settings), temporary=True)


def _temporary_reason(exc: Exception) -> str:
    if isinstance(exc, StoreAuthError):
        return reasons.STORE_AUTH_FAILED
    return reasons.STORE_UNAVAILABLE if isinstance(exc, StoreError) else reasons.KUBE_ERROR

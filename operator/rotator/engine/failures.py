"""What a failed reconcile becomes: a retry with jittered backoff, or a condition a human reads.

The one owner of retry timing. Temporary failures (store or API unreachable, a refused login, a
conflict, an unexpected exception) back off exponentially with jitter
(:mod:`rotator.policy.backoff`), seeded by the policy so that many policies failing against one
store spread their retries instead of knocking together. The
attempt count lives in ``status.rotation.attempt`` mid-rotation (it survives restarts) and, for
an idle policy, in the caller's count of temporary results in a row.

Honest conditions: every temporary failure, idle or mid-rotation, sets ``Ready=False`` with a
reason naming what fails (StoreUnavailable, StoreAuthFailed, KubernetesError, ReconcileError)
and a message saying since when (``status.failingSince``, the first failure of the streak,
cleared by :func:`rotator.engine.draft.persist` when a reconcile ends otherwise); mid-rotation
the Rotating condition says which step retries after how many attempts. The next step that runs
puts Ready back (:mod:`rotator.engine.advance`).
"""

from __future__ import annotations

import logging
from typing import Final

from rotator.engine.deps import Deps
from rotator.engine.draft import Draft, Reconciled, persist
from rotator.kube import KubeConflict, KubeError, KubeUnavailable
from rotator.models import (
    ConditionStatus,
    ConditionType,
    CredentialSecretUnusable,
    PermanentError,
    PolicyRef,
    RotationPolicySpec,
    Settings,
    format_time,
    reasons,
)
from rotator.policy.backoff import retry_delay
from rotator.stores.errors import (
    StoreAuthError,
    StoreConflict,
    StoreError,
    StoreMountError,
    StoreOwnershipError,
    StoreUnavailable,
)
from rotator.targets.base import TargetUnavailable

log = logging.getLogger("rotator.engine")

TEMPORARY: Final = (
    StoreUnavailable,
    KubeUnavailable,
    KubeConflict,
    StoreConflict,
    StoreAuthError,
    TargetUnavailable,
)


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
        if isinstance(exc, CredentialSecretUnusable):
            recheck = deps.settings.credential_secret_recheck  # fixed by one Secret: look soon
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
    return _temporary(draft, deps, exc, failures, unexpected=True)


#: What each temporary failure says is wrong, in Ready's message ("... since <time>").
_WHAT: Final = {
    reasons.STORE_UNAVAILABLE: "store unavailable",
    reasons.STORE_AUTH_FAILED: "store refuses rotator's login",
    reasons.KUBE_ERROR: "Kubernetes API unavailable",
    reasons.TARGET_UNAVAILABLE: "credential target unavailable",
    reasons.RECONCILE_ERROR: "reconcile failing",
}


def _temporary(
    draft: Draft, deps: Deps, exc: Exception, failures: int, *, unexpected: bool = False
) -> Reconciled:
    """Retry later with backoff, and say so: Ready=False naming what fails since when (the first
    failure of the streak, ``status.failingSince``) and, mid-rotation, the Rotating condition
    naming the step and the attempts. One Event per outage, not one per retry."""
    if unexpected:
        reason = reasons.RECONCILE_ERROR
        text = f"unexpected {type(exc).__name__} (see the operator log)"
    else:
        reason, text = _temporary_reason(exc), str(exc)
    since = draft.status.failing_since or draft.now
    draft.set(failing_since=since)
    ready = draft.status.condition(ConditionType.READY)
    rotation = draft.status.rotation
    message = f"{_WHAT[reason]} since {format_time(since)}: {text}"
    if rotation is not None:
        attempt = rotation.attempt + 1
        draft.set_rotation(attempt=attempt, last_error=f"{type(exc).__name__}: {text}")
        first_of_outage = attempt == 1
        message += f"; rotation {rotation.id} waits at step {rotation.step}"
        plural = "" if attempt == 1 else "s"
        draft.condition(
            ConditionType.ROTATING,
            True,
            reasons.STEP_RETRYING,
            f"{rotation.step}: retrying after {attempt} failed attempt{plural} "
            f"(failing since {format_time(since)}): {type(exc).__name__}",
        )
    else:
        attempt = failures
        first_of_outage = ready is None or ready.status != ConditionStatus.FALSE or ready.reason != reason
    if first_of_outage:
        if unexpected:
            draft.event(reasons.RECONCILE_ERROR, message, warning=True)
        else:
            draft.event(reasons.STEP_RETRYING, f"temporary failure, will retry: {text}", warning=True)
    draft.condition(ConditionType.READY, False, reason, f"{message}; retrying with backoff")
    return persist(deps.kube, draft, backoff(draft.ref, attempt, deps.settings), temporary=True)


def _temporary_reason(exc: Exception) -> str:
    """Ready's reason: a refused identity is StoreAuthFailed wherever it happens (idle or
    mid-rotation), any other store failure StoreUnavailable, the API's failures KubernetesError."""
    if isinstance(exc, StoreAuthError):
        return reasons.STORE_AUTH_FAILED
    if isinstance(exc, TargetUnavailable):
        return reasons.TARGET_UNAVAILABLE
    return reasons.STORE_UNAVAILABLE if isinstance(exc, StoreError) else reasons.KUBE_ERROR

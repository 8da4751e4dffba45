"""reconcile(policy, deps, now): observe, decide (pure), run exactly one step, persist.

The engine is synchronous like the clients beneath it; the handlers run it in a worker thread.
Progress lives in `.status.rotation` and is written after every step, so the next step to run
is always derived from status plus what the store and cluster actually hold. A crash between a
side effect and the status write re-runs the step, which observes its own earlier work and
turns into a no-op (DESIGN §1 crash rules).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from pydantic import SecretStr

from rotator import metrics as metrics_module
from rotator.kube import Kube, KubeConflict, KubeError, KubeUnavailable
from rotator.logs import SENSITIVE
from rotator.models import (
    InvalidSpecError,
    RotationPolicySpec,
    format_time,
    parse_spec,
    parse_time,
    set_condition,
)
from rotator.policy.backoff import retry_delay
from rotator.policy.schedule import next_rotation_time
from rotator.policy.scope import StoreKindChanged, credential_spec_hash, pin_to_rotation, store_location
from rotator.policy.transitions import Outcome, RotationResult, Step, next_step, result_of
from rotator.policy.triggers import Decision, TriggerInputs, decide
from rotator.steps import dual, generate, reasons, restart, revoke, rollback, sync, verify
from rotator.steps.context import Event, PermanentStepError, PolicyRef, StepContext, StepResult
from rotator.steps.secret_sync import ensure_secret_is_ours, write_secret
from rotator.stores.base import Store, StoredVersion, VersionState
from rotator.stores.errors import (
    StoreAuthError,
    StoreConflict,
    StoreError,
    StoreOwnershipError,
    StoreUnavailable,
)
from rotator.targets.password import generate_password

FORCE_ANNOTATION: Final = "rotator.dev/force-rotate"
HISTORY_LIMIT: Final = 10
# After a rollback the same trigger would fire again at once; wait before the next attempt.
RETRY_AFTER_ROLLBACK: Final = timedelta(hours=1)
PERMANENT_ERROR_RECHECK: Final = 60.0

STEPS: Final[dict[Step, Callable[[StepContext], StepResult]]] = {
    Step.GENERATE: generate.run,
    Step.DUAL: dual.run,
    Step.SYNC: sync.run,
    Step.RESTART: restart.run,
    Step.VERIFY: verify.run,
    Step.REVOKE: revoke.run,
    Step.ROLLBACK: rollback.run,
}

StoreOpener = Callable[[PolicyRef, RotationPolicySpec], Store]


def _no_checkpoint(point: str) -> None:
    """Production has no fault injection; tests pass a hook that crashes at a named point."""


def _ignore_auth_failure(policy: PolicyRef, spec: RotationPolicySpec) -> None:
    """Without cached sessions there is nothing to drop."""


def _new_rotation_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Deps:
    """Everything with I/O or randomness, injected so tests swap in fakes or fault hooks."""

    kube: Kube
    open_store: StoreOpener
    metrics: metrics_module.Metrics
    new_rotation_id: Callable[[], str] = _new_rotation_id
    checkpoint: Callable[[str], None] = _no_checkpoint
    #: Called when the store refused our identity, so the next open logs in afresh.
    store_auth_failed: Callable[[PolicyRef, RotationPolicySpec], None] = _ignore_auth_failure
    #: Seconds between idle checks (drift repair, schedule): the Secret is re-verified this often.
    idle_resync: float = 30.0
    #: Seconds between polls while a step waits (rollouts).
    poll: float = 1.0
    #: Base seconds of the exponential backoff for temporary failures.
    backoff_base: float = 1.0
    backoff_cap: float = 60.0


@dataclass
class Reconciled:
    """What one reconcile did: when to look again, and the Events to post on the policy."""

    requeue_after: float | None
    events: list[Event] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    #: The reconcile ended on a temporary failure (store or API unreachable): back off.
    temporary: bool = False


class _Run:
    """One reconcile of one policy: builds the status patch and the events as it goes."""

    def __init__(self, obj: Mapping[str, Any], deps: Deps, now: datetime) -> None:
        meta = obj.get("metadata", {})
        self.obj = obj
        self.deps = deps
        self.now = now
        self.ref = PolicyRef(meta["namespace"], meta["name"], meta.get("uid", ""))
        self.generation = int(meta.get("generation") or 0)
        self.annotations: Mapping[str, str] = meta.get("annotations") or {}
        self.status: dict[str, Any] = json.loads(json.dumps(obj.get("status") or {}))
        self.events: list[Event] = []
        self.labels = {"namespace": self.ref.namespace, "policy": self.ref.name}

    # --- status helpers ---------------------------------------------------------------------
    def condition(
        self, type_: str, status: bool, reason: str, message: str, event_on_change: bool = False
    ) -> None:
        before = {c.get("type"): c for c in self.status.get("conditions") or []}.get(type_)
        self.status["conditions"] = set_condition(
            self.status.get("conditions") or [],
            type_,
            "True" if status else "False",
            reason,
            message,
            self.now,
            self.generation,
        )
        changed = before is None or before.get("reason") != reason or before.get("message") != message
        if event_on_change and changed:
            warning = (type_ == "Ready" and not status) or (type_ == "Degraded" and status)
            self.events.append(Event(reason, message, warning))

    def persist(self, requeue_after: float | None) -> Reconciled:
        self.status["observedGeneration"] = self.generation
        patch = dict(self.status)
        if "rotation" not in patch:
            patch["rotation"] = None  # merge patch: null removes the finished rotation
        self.deps.kube.patch_policy_status(self.ref.namespace, self.ref.name, patch)
        return Reconciled(requeue_after, self.events, self.status)

    # --- entry ------------------------------------------------------------------------------
    def reconcile(self) -> Reconciled:
        try:
            spec = parse_spec(self.obj.get("spec") or {})
        except InvalidSpecError as exc:
            self.condition("Ready", False, reasons.INVALID_SPEC, str(exc), event_on_change=True)
            self.status.setdefault("phase", "Idle")
            return self.persist(None)
        self.status["storeKind"] = str(spec.store_kind)
        try:
            if self.status.get("rotation"):
                return self.advance(spec)
            return self.idle(spec)
        except (StoreUnavailable, KubeUnavailable, KubeConflict, StoreConflict) as exc:
            return self.temporary_failure(exc)
        except StoreAuthError as exc:
            # An expired or revoked Vault token: drop the session, log in again after a backoff.
            self.deps.store_auth_failed(self.ref, spec)
            return self.temporary_failure(exc)
        except StoreOwnershipError as exc:
            self.condition("Ready", False, reasons.STORE_NOT_OWNED, str(exc), event_on_change=True)
            return self.persist(PERMANENT_ERROR_RECHECK)
        except PermanentStepError as exc:
            self.condition("Ready", False, exc.reason, str(exc), event_on_change=True)
            if self.status.get("rotation"):
                self.condition("Degraded", True, exc.reason, str(exc))
            return self.persist(PERMANENT_ERROR_RECHECK)
        except (StoreError, KubeError) as exc:
            self.condition(
                "Ready",
                False,
                reasons.KUBE_ERROR if isinstance(exc, KubeError) else reasons.STORE_ERROR,
                str(exc),
                event_on_change=True,
            )
            return self.persist(PERMANENT_ERROR_RECHECK)

    def temporary_failure(self, exc: Exception) -> Reconciled:
        rotation = self.status.get("rotation")
        attempt = 0
        if rotation:
            attempt = int(rotation.get("attempt") or 0) + 1
            rotation["attempt"] = attempt
            rotation["lastError"] = f"{type(exc).__name__}: {exc}"
        reason = reasons.STORE_UNAVAILABLE if isinstance(exc, StoreError) else reasons.KUBE_ERROR
        previous = {c.get("type"): c for c in self.status.get("conditions") or []}.get("Ready") or {}
        # One Event per outage, not one per retry: the condition and lastError carry the rest.
        first_of_outage = attempt == 1 if rotation else previous.get("message") != str(exc)
        if first_of_outage:
            self.events.append(Event(reasons.STEP_RETRYING, f"temporary failure, will retry: {exc}", True))
        if not rotation:
            self.condition("Ready", False, reason, str(exc))
        delay = retry_delay(
            attempt, base=self.deps.backoff_base, cap=self.deps.backoff_cap, seed=self.ref.owner
        )
        reconciled = self.persist(delay)
        reconciled.temporary = True
        return reconciled

    # --- idle: drift repair and the trigger chain -------------------------------------------
    def idle(self, spec: RotationPolicySpec) -> Reconciled:
        store = self.deps.open_store(self.ref, spec)
        if spec.dry_run:
            return self.dry_run(spec, store)
        if spec.suspend:
            # Suspended means hands off: no ownership tags, no drift repair over an emergency edit.
            decision = decide(self.trigger_inputs(spec, store.current()), self.now)
            if decision.force_value_to_record:
                self.status["lastHandledForceRotate"] = decision.force_value_to_record
            self.condition("Ready", True, reasons.SUSPENDED, decision.message)
            self.schedule(spec)
            return self.persist(self.deps.idle_resync)
        # Refuse a foreign Secret before touching the store: a rotation must not start that
        # could never hand its credential over.
        ensure_secret_is_ours(self.deps.kube, self.ref, spec.secret.name)
        existed = store.ensure_owned(self.ref.owner, spec.store_adopt)
        current = store.current()
        if current is not None and existed and not self.status.get("currentVersion"):
            self.adopt(spec, current)
        if current is not None:
            self.repair_drift(spec, store, current)
        decision = decide(self.trigger_inputs(spec, current), self.now)
        if decision.force_value_to_record:
            self.status["lastHandledForceRotate"] = decision.force_value_to_record
        if decision.rotate:
            return self.start(spec, decision, current)
        if self.status.get("lastResult") != RotationResult.FAILED:
            self.status["phase"] = "Idle"
        self.condition("Ready", True, reasons.READY, decision.message)
        self.condition("Rotating", False, reasons.ROTATION_IDLE, "no rotation in progress")
        next_due = self.schedule(spec)
        requeue = self.deps.idle_resync
        if next_due is not None:
            requeue = max(0.0, min(requeue, (next_due - self.now).total_seconds()))
        return self.persist(requeue)

    def adopt(self, spec: RotationPolicySpec, current: StoredVersion) -> None:
        self.status["currentVersion"] = current.version
        self.status["credentialSpecHash"] = credential_spec_hash(spec)
        if current.created_at is not None:
            self.status["credentialCreatedAt"] = format_time(current.created_at)
        self.events.append(
            Event(reasons.STORE_ADOPTED, f"adopted the store's existing version {current.version}")
        )

    def repair_drift(self, spec: RotationPolicySpec, store: Store, current: StoredVersion) -> None:
        if current.state == VersionState.DESTROYED:
            self.condition(
                "Degraded",
                True,
                reasons.CURRENT_UNREADABLE,
                f"store version {current.version} is destroyed; force a rotation to issue a new credential",
                event_on_change=True,
            )
            return
        try:
            value = store.read_value(current.version)
        except (StoreUnavailable, StoreAuthError):
            raise
        except StoreError as exc:
            # The current credential cannot be read: repair is impossible, but a rotation is not.
            self.condition("Degraded", True, reasons.CURRENT_UNREADABLE, str(exc), event_on_change=True)
            return
        history = self.status.get("history") or []
        rotation_id = str(history[0].get("id", "adopted")) if history else "adopted"
        changed = write_secret(
            self.deps.kube,
            self.ref,
            spec.secret.name,
            {spec.secret.key: value},
            current.version,
            rotation_id,
        )
        if changed:
            self.events.append(
                Event(
                    reasons.SECRET_DRIFT_REPAIRED,
                    f"Secret {spec.secret.name} re-synced to store version {current.version}",
                    warning=bool(self.status.get("lastRotationTime")),
                )
            )

    def trigger_inputs(self, spec: RotationPolicySpec, current: StoredVersion | None) -> TriggerInputs:
        created = _maybe_time(self.status.get("credentialCreatedAt"))
        last = _maybe_time(self.status.get("lastRotationTime"))
        next_due = _maybe_time(self.status.get("nextRotationTime")) or self.compute_next_due(
            spec, last, created
        )
        return TriggerInputs(
            suspended=spec.suspend,
            rotating=False,
            force_value=self.annotations.get(FORCE_ANNOTATION),
            handled_force_value=self.status.get("lastHandledForceRotate"),
            never_rotated=last is None,
            store_has_adoptable_value=current is not None,
            last_rotation_time=last,
            credential_created_at=created,
            next_due=next_due,
            max_age=spec.schedule.max_age_delta if spec.schedule else None,
            credential_spec_hash=credential_spec_hash(spec),
            handled_credential_spec_hash=self.status.get("credentialSpecHash") or credential_spec_hash(spec),
            retry_not_before=_maybe_time(self.status.get("retryNotBefore")),
        )

    def compute_next_due(
        self, spec: RotationPolicySpec, last: datetime | None, created: datetime | None
    ) -> datetime | None:
        schedule = spec.schedule
        if schedule is None:
            return None
        return next_rotation_time(
            last,
            created,
            schedule.interval_delta,
            schedule.cron,
            schedule.max_age_delta,
            schedule.jitter_delta,
            self.ref.owner,
            self.now,
        )

    def schedule(self, spec: RotationPolicySpec) -> datetime | None:
        created = _maybe_time(self.status.get("credentialCreatedAt"))
        last = _maybe_time(self.status.get("lastRotationTime"))
        next_due = self.compute_next_due(spec, last, created)
        paused_until = _maybe_time(self.status.get("retryNotBefore"))
        if next_due is not None and paused_until is not None and paused_until > next_due:
            next_due = paused_until  # after a failed rotation nothing but a force comes sooner
        self.status["nextRotationTime"] = format_time(next_due) if next_due else None
        m = self.deps.metrics
        if next_due is not None:
            m.next_rotation.labels(**self.labels).set(next_due.timestamp())
        if created is not None:
            m.credential_age.labels(**self.labels).set(max(0.0, (self.now - created).total_seconds()))
        if last is not None:  # restored from status, so an operator restart keeps the series
            m.last_success.labels(**self.labels).set(last.timestamp())
        m.in_progress.labels(**self.labels).set(0)
        return next_due

    def dry_run(self, spec: RotationPolicySpec, store: Store) -> Reconciled:
        current = store.current()
        decision = decide(self.trigger_inputs(spec, current), self.now)
        if decision.force_value_to_record:
            # Consumed here: turning dryRun off later must not act on an old request.
            self.status["lastHandledForceRotate"] = decision.force_value_to_record
        would = decision.rotate
        message = (
            f"dry run: would rotate ({decision.reason}): {decision.message}"
            if would
            else f"dry run: no rotation: {decision.message}"
        )
        previous = self.status.get("lastDryRun") or {}
        if previous.get("message") != message:
            self.events.append(Event(reasons.DRY_RUN, message))
        self.status["lastDryRun"] = {
            "at": format_time(self.now),
            "wouldRotate": would,
            "reason": str(decision.reason) if decision.reason else None,
            "message": message,
        }
        self.status["phase"] = "Idle"
        self.condition("Ready", True, reasons.DRY_RUN, message)
        return self.persist(self.deps.idle_resync)

    def start(
        self, spec: RotationPolicySpec, decision: Decision, current: StoredVersion | None
    ) -> Reconciled:
        rotation_id = self.deps.new_rotation_id()
        now = format_time(self.now)
        self.status["rotation"] = {
            "id": rotation_id,
            "reason": str(decision.reason),
            "step": str(Step.GENERATE),
            "startedAt": now,
            "stepStartedAt": precise_time(self.now),
            "attempt": 0,
            # A destroyed current version is nothing to fall back to (and nothing to revoke).
            "oldVersion": current.version if current and current.state != VersionState.DESTROYED else None,
            "newVersion": None,
            "verifiedAt": None,
            "restartedTargets": [],
            "lastError": None,
            # Pinned for the whole rotation: versions in this object belong to this path/Secret.
            "storeLocation": store_location(spec),
            "secretName": spec.secret.name,
            "credentialSpecHash": credential_spec_hash(spec),
        }
        self.status["phase"] = "Rotating"
        self.condition(
            "Rotating", True, reasons.ROTATING, f"rotation {rotation_id} started: {decision.message}"
        )
        self.events.append(
            Event(
                reasons.ROTATION_STARTED,
                f"rotation {rotation_id} started ({decision.reason}): {decision.message}",
            )
        )
        self.deps.metrics.in_progress.labels(**self.labels).set(1)
        # Persisted before any side effect: the id is what makes every later write idempotent.
        reconciled = self.persist(0.0)
        self.deps.checkpoint("start:after-persist")
        return reconciled

    # --- rotating: one step ------------------------------------------------------------------
    def advance(self, spec: RotationPolicySpec) -> Reconciled:
        rotation: dict[str, Any] = self.status["rotation"]
        try:
            step = Step(rotation["step"])
            step_started_at = parse_time(str(rotation["stepStartedAt"]))
            rotation_id = str(rotation["id"])
        except (KeyError, ValueError) as exc:
            # A hand-edited status: acting on a guess could revoke the wrong thing, so hold.
            message = f"status.rotation is not usable ({type(exc).__name__}: {exc}); fix or remove it"
            self.condition("Ready", False, reasons.INVALID_STATUS, message, event_on_change=True)
            return self.persist(PERMANENT_ERROR_RECHECK)
        if spec.dry_run:
            message = f"dryRun set during rotation {rotation_id}: holding at step {step} until it is unset"
            self.condition("Rotating", True, reasons.DRY_RUN, message, event_on_change=True)
            return self.persist(self.deps.idle_resync)
        try:
            spec = pin_to_rotation(spec, rotation)
        except StoreKindChanged as exc:
            raise PermanentStepError(reasons.STORE_KIND_CHANGED, str(exc)) from None
        force = self.annotations.get(FORCE_ANNOTATION)
        if force and force != self.status.get("lastHandledForceRotate"):
            self.status["lastHandledForceRotate"] = force
            self.events.append(
                Event(
                    reasons.FORCE_IGNORED,
                    f"force-rotate {force!r} arrived during rotation "
                    f"{rotation['id']}; that rotation already produces a new credential",
                )
            )
        store = self.deps.open_store(self.ref, spec)
        ctx = StepContext(
            policy=self.ref,
            spec=spec,
            rotation_id=rotation_id,
            old_version=rotation.get("oldVersion"),
            new_version=rotation.get("newVersion"),
            step_started_at=step_started_at,
            verified_at=_maybe_time(rotation.get("verifiedAt")),
            restarted_targets=tuple(rotation.get("restartedTargets") or ()),
            store=store,
            kube=self.deps.kube,
            now=self.now,
            generate=lambda: _generate(spec),
            checkpoint=self.deps.checkpoint,
            verify_timeout=spec.verify.timeout_delta,
            grace_period=spec.revoke.grace_period_delta,
        )
        started = time.monotonic()
        try:
            result = STEPS[step](ctx)
            # The step's side effects are done and status is not saved yet: the riskiest moment.
            self.deps.checkpoint(f"{step}:before-persist")
        except PermanentStepError as exc:
            if step in (Step.REVOKE, Step.ROLLBACK):
                raise
            result = StepResult(
                Outcome.FAILED, str(exc), {"lastError": str(exc)}, (Event(exc.reason, str(exc), True),)
            )
        except (StoreUnavailable, StoreConflict, StoreAuthError):
            raise
        except StoreError as exc:
            # A store refusal no retry fixes (a version gone, an invariant): before revoke the
            # safe way out is rollback to the old credential, which was never touched.
            if step in (Step.REVOKE, Step.ROLLBACK):
                raise
            result = StepResult(
                Outcome.FAILED,
                str(exc),
                {"lastError": str(exc)},
                (Event(reasons.STORE_ERROR, str(exc), True),),
            )
        finally:
            self.deps.metrics.step_duration.labels(step=str(step)).observe(time.monotonic() - started)
        rotation.update(result.updates)
        self.events.extend(result.events)
        for kind in result.restarted_kinds:
            self.deps.metrics.restarts_total.labels(kind=kind).inc()
        if result.outcome is Outcome.WAITING:
            rotation["lastError"] = None
            self.condition("Rotating", True, reasons.ROTATING, f"{step}: {result.message}")
            requeue = result.requeue_after if result.requeue_after is not None else self.deps.poll
            return self.persist(min(requeue, self.deps.idle_resync))
        started_step = _maybe_time(rotation.get("stepStartedAt")) or self.now
        seconds = round(max(0.0, (self.now - started_step).total_seconds()), 3)
        rotation["steps"] = [*(rotation.get("steps") or []), {"step": str(step), "seconds": seconds}]
        following = next_step(step, result.outcome)
        if following is None:
            return self.finish(spec, step, result)
        rotation.update(
            {
                "step": str(following),
                "stepStartedAt": precise_time(self.now),
                "attempt": 0,
                "lastError": rotation.get("lastError") if following is Step.ROLLBACK else None,
            }
        )
        if following is Step.ROLLBACK:
            self.status["phase"] = "RollingBack"
            self.condition("Degraded", True, reasons.VERIFY_FAILED, result.message, event_on_change=False)
        self.condition(
            "Rotating", True, reasons.ROTATING, f"{step} done: {result.message}; next: {following}"
        )
        self.events.append(Event(reasons.STEP_COMPLETED, f"{step}: {result.message}"))
        return self.persist(0.0)

    def finish(self, spec: RotationPolicySpec, step: Step, result: StepResult) -> Reconciled:
        rotation: dict[str, Any] = self.status.pop("rotation")
        outcome = result_of(step, result.outcome) or RotationResult.FAILED
        succeeded = outcome is RotationResult.SUCCEEDED
        version = rotation.get("newVersion") if succeeded else rotation.get("oldVersion")
        entry = {
            "id": rotation["id"],
            "reason": rotation.get("reason"),
            "startedAt": rotation.get("startedAt"),
            "finishedAt": format_time(self.now),
            "result": str(outcome),
            "version": version,
            "steps": rotation.get("steps"),
        }
        entry = {k: v for k, v in entry.items() if v is not None}  # lists are not merge-patched: no nulls
        self.status["history"] = [entry, *(self.status.get("history") or [])][:HISTORY_LIMIT]
        self.status["lastResult"] = str(outcome)
        self.status["phase"] = "Idle" if outcome is not RotationResult.FAILED else "Failed"
        m = self.deps.metrics
        m.rotations_total.labels(
            **self.labels, result=_metric_result(outcome), reason=rotation.get("reason") or ""
        ).inc()
        m.in_progress.labels(**self.labels).set(0)
        self.condition("Rotating", False, reasons.ROTATION_IDLE, "no rotation in progress")
        if succeeded:
            self.status["currentVersion"] = version
            self.status["retryNotBefore"] = None
            if rotation.get("credentialSpecHash"):
                # Only a credential that made it counts as "the spec was handled".
                self.status["credentialSpecHash"] = rotation["credentialSpecHash"]
            self.status["credentialCreatedAt"] = format_time(self.now)
            self.status["lastRotationTime"] = format_time(self.now)
            self.status["nextRotationTime"] = None
            m.last_success.labels(**self.labels).set(self.now.timestamp())
            self.condition(
                "Degraded", False, reasons.ROTATION_SUCCEEDED, f"rotation {rotation['id']} succeeded"
            )
            self.condition("Ready", True, reasons.READY, f"credential at store version {version}")
            self.events.append(
                Event(
                    reasons.ROTATION_SUCCEEDED,
                    f"rotation {rotation['id']} succeeded: store "
                    f"version {version} is current, the old one revoked",
                )
            )
            self.schedule(spec)
        else:
            if rotation.get("oldVersion"):
                self.status["currentVersion"] = rotation.get("oldVersion")
            message = f"rotation {rotation['id']} {outcome}: {rotation.get('lastError') or result.message}"
            reason = (
                reasons.ROTATION_ROLLED_BACK
                if outcome is RotationResult.ROLLED_BACK
                else reasons.ROTATION_FAILED
            )
            self.condition("Degraded", True, reason, message)
            self.events.append(Event(reason, message, True))
            self.status["retryNotBefore"] = format_time(self.now + RETRY_AFTER_ROLLBACK)
        return self.persist(0.0 if succeeded else self.deps.idle_resync)


def reconcile(obj: Mapping[str, Any], deps: Deps, now: datetime) -> Reconciled:
    """Observe the policy, decide, run at most one step, and write status. Never raises for bad input."""
    return _Run(obj, deps, now).reconcile()


def _generate(spec: RotationPolicySpec) -> SecretStr:
    password = spec.credential.password
    assert password is not None, "password is the only credential kind so far"
    value = generate_password(password.length, password.alphabet)
    SENSITIVE.add(value.get_secret_value())  # the logs' second belt: mask it wherever it shows up
    return value


def _metric_result(result: RotationResult) -> str:
    return {RotationResult.SUCCEEDED: "succeeded", RotationResult.ROLLED_BACK: "rolled_back"}.get(
        result, "failed"
    )


def precise_time(moment: datetime) -> str:
    """RFC 3339 with milliseconds: step timings need more than metav1.Time's whole seconds."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _maybe_time(value: object) -> datetime | None:
    return parse_time(str(value)) if value else None


def utcnow() -> datetime:
    return datetime.now(UTC)

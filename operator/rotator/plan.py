"""``rotator plan``: what each policy would do now and next, touching nothing.

The answer comes from the operator's own pure functions (``engine.facts.trigger_inputs``, the
trigger chain, ``engine.schedule.published_next``, the window), fed what the CLI read: the policy
(from the cluster or a file), its live status when the cluster has one, the resolved store and
which restart targets exist. So a plan says what the operator will decide, not a second guess of
it; what it cannot know without the store's credentials (whether a value at a new path would be
adopted) it says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from rotator.engine.facts import schedule_outlook, trigger_inputs
from rotator.engine.schedule import published_next
from rotator.models import InvalidSpecError, RotationPolicySpec, RotationPolicyStatus, parse_spec
from rotator.models.status import format_time
from rotator.policy.triggers import Decision, decide
from rotator.policy.window import window_of
from rotator.tenancy.resolve import ResolvedStore

__all__ = ["Plan", "Target", "plan_policy", "render"]


@dataclass(frozen=True)
class Target:
    kind: str
    name: str
    #: None when the cluster was not asked (planning a file offline).
    exists: bool | None = None


@dataclass(frozen=True)
class Plan:
    namespace: str
    name: str
    error: str | None = None
    rotate_now: bool = False
    reason: str | None = None
    message: str = ""
    blocked_by: str | None = None
    next_at: datetime | None = None
    next_reason: str | None = None
    window: str | None = None
    window_open: bool | None = None
    steps: tuple[tuple[str, str], ...] = ()
    restarts: tuple[Target, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "error": self.error,
            "now": {
                "rotate": self.rotate_now,
                "reason": self.reason,
                "message": self.message,
                "blockedBy": self.blocked_by,
            },
            "next": {
                "at": format_time(self.next_at) if self.next_at else None,
                "reason": self.next_reason,
            },
            "window": {"description": self.window, "openNow": self.window_open} if self.window else None,
            "steps": [{"step": step, "does": does} for step, does in self.steps],
            "restarts": [{"kind": t.kind, "name": t.name, "exists": t.exists} for t in self.restarts],
            "notes": list(self.notes),
        }


def _store_words(spec: RotationPolicySpec, resolved: ResolvedStore | None) -> tuple[str, str]:
    """(where the credential is written, how it is staged) for the step lines."""
    if resolved is None:
        return f"the store {spec.store_ref.kind}/{spec.store_ref.name} (path {spec.path})", "as pending"
    location = resolved.location()
    if location.get("kind") == "vault":
        return f"Vault KV {location['mount']}/{location['path']} at {location['address']}", (
            "as pending (check-and-set, keyed by the rotation id)"
        )
    return f"AWS Secrets Manager {location.get('secretId')} in {location.get('region')}", (
        "as AWSPENDING (ClientRequestToken = the rotation id)"
    )


def _credential_words(spec: RotationPolicySpec) -> str:
    dump = spec.credential.model_dump(mode="json", by_alias=True, exclude_none=True)
    kind, params = next(iter(dump.items()))
    details = ", ".join(f"{k}={v}" for k, v in sorted((params or {}).items()))
    return f"{kind} ({details})" if details else kind


def _steps(
    spec: RotationPolicySpec, resolved: ResolvedStore | None, targets: Sequence[Target]
) -> tuple[tuple[str, str], ...]:
    where, staged = _store_words(spec, resolved)
    secret = spec.secret
    previous = f", the old one under {secret.previous_key} until revoked" if secret.previous_key else ""
    restarts = (
        f"{', '.join(f'{t.kind}/{t.name}' for t in targets)} (pod-template annotation, at most "
        f"{spec.restart.max_concurrent} at a time)"
        if targets
        else "no workloads named in spec.restart.targets"
    )
    return (
        ("generate", f"new {_credential_words(spec)} written to {where} {staged}"),
        ("dual", "the store promotes it to current and keeps the old one as previous"),
        ("sync", f"Secret {secret.name} key {secret.key} gets the new value{previous}"),
        ("restart", restarts),
        (
            "verify",
            f"every rollout completes and the new credential is in place within {spec.verify.timeout} "
            "(else roll back: old value restored, consumers restarted, old never revoked)",
        ),
        ("revoke", f"the old credential, {spec.revoke.grace_period} after verification"),
    )


def _next(
    spec: RotationPolicySpec, status: RotationPolicyStatus, seed: str, now: datetime, decision: Decision
) -> tuple[datetime | None, str | None]:
    """The next rotation after the one starting now (if any): when, and which trigger."""
    if decision.rotate:
        status = status.model_copy(
            update={
                "last_rotation_time": now,
                "credential_created_at": now,
                "next_rotation_time": None,
                "retry_not_before": None,
            }
        )
    at = published_next(spec, status, seed, now)
    if at is None:
        return None, None
    deadlines = schedule_outlook(spec, status, seed, now)
    if deadlines.next is not None and at > deadlines.next:
        return at, "PausedAfterFailure"  # the retryNotBefore pause pushed it
    if deadlines.max_age_deadline is not None and at == deadlines.max_age_deadline:
        return at, "MaxAgeExceeded"
    return at, "Due"


def plan_policy(
    obj: Mapping[str, Any],
    *,
    now: datetime,
    status: Mapping[str, Any] | None = None,
    resolved: ResolvedStore | None = None,
    store_problem: str | None = None,
    existing: Mapping[tuple[str, str], bool] | None = None,
) -> Plan:
    """One policy's plan. ``status``: the live object's (a file has none); ``resolved``: its store
    as the operator would resolve it (None: unknown, ``store_problem`` says why); ``existing``:
    which (kind, name) restart targets the cluster has (None: not asked)."""
    meta = obj.get("metadata") or {}
    namespace, name = str(meta.get("namespace") or "default"), str(meta.get("name") or "?")
    try:
        spec = parse_spec(obj.get("spec") or {})
    except InvalidSpecError as exc:
        return Plan(namespace, name, error=f"invalid: {exc}")
    try:
        typed = RotationPolicyStatus.from_raw(status)
    except ValueError as exc:
        return Plan(namespace, name, error=f"status unreadable: {exc}")
    seed = f"{namespace}/{name}"
    notes: list[str] = []
    location = resolved.location() if resolved is not None else {}
    inputs = trigger_inputs(
        spec,
        typed,
        dict(meta.get("annotations") or {}),
        seed=seed,
        now=now,
        store_has_value=False,
        location=location,
    )
    if resolved is None:
        # Without the store's location a changed credential spec cannot be told from a moved path.
        inputs = replace(inputs, handled_credential_spec_hash=inputs.credential_spec_hash)
        notes.append(
            f"store not resolved ({store_problem or 'not asked'}): a credential spec change is not judged"
        )
    decision = decide(inputs, now)
    if decision.reason is not None and str(decision.reason) == "Initial":
        notes.append(
            "a value already at the store path that rotator owns (or spec.adopt allows) is adopted instead"
        )
    if typed.rotation is not None:
        notes.append(f"rotation {typed.rotation.id} is at step {typed.rotation.step}; it finishes first")
    targets = tuple(
        Target(str(t.kind), t.name, None if existing is None else existing.get((str(t.kind), t.name)))
        for t in spec.restart.targets
    )
    notes.extend(f"restart target {t.kind}/{t.name} does not exist" for t in targets if t.exists is False)
    window = window_of(spec.schedule)
    next_at, next_reason = _next(spec, typed, seed, now, decision)
    return Plan(
        namespace,
        name,
        rotate_now=decision.rotate,
        reason=str(decision.reason) if decision.reason else None,
        message=decision.message,
        blocked_by=decision.blocked_by,
        next_at=next_at,
        next_reason=next_reason,
        window=window.describe() if window else None,
        window_open=window.contains(now) if window else None,
        steps=_steps(spec, resolved, targets),
        restarts=targets,
        notes=tuple(notes),
    )


def _until(at: datetime, now: datetime) -> str:
    delta = at - now
    if delta <= timedelta(0):
        return "due now"
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (minutes, "m")) if v]
    return "in " + ("".join(parts) or f"{seconds}s")


def render(plans: Sequence[Plan], now: datetime) -> str:
    """The text a human reads before merging."""
    lines: list[str] = []
    for plan in plans:
        head = f"{plan.namespace}/{plan.name}"
        if plan.error:
            lines += [f"{head}: {plan.error}", ""]
            continue
        verdict = f"rotate now ({plan.reason})" if plan.rotate_now else "no rotation now"
        lines.append(f"{head}: {verdict}: {plan.message}")
        if plan.next_at is not None:
            after = " after this one" if plan.rotate_now else ""
            when = f"{plan.next_reason}, {_until(plan.next_at, now)}"
            lines.append(f"  next:     {format_time(plan.next_at)} ({when}){after}")
        else:
            lines.append("  next:     none scheduled (force or a credential spec change only)")
        if plan.window:
            lines.append(f"  window:   {plan.window} ({'open' if plan.window_open else 'closed'} now)")
        lines.append("  steps:" if plan.rotate_now else "  steps (when it rotates):")
        lines += [f"    {n} {step:<9} {does}" for n, (step, does) in enumerate(plan.steps, 1)]
        lines += [f"  note:     {note}" for note in plan.notes]
        lines.append("")
    return "\n".join(lines)

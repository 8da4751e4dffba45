"""A store's own status: ``Ready`` says whether its spec is valid, its address allowed, its server
reachable and its credential accepted — so an admin sees a broken store before any policy trips
over it. One reconcile: check, set the condition (Event when it changes), write if changed.

The check is injected (``StoreOpener.health``, ``rotator.stores.health``): a static credential is
tried as is, a namespaced store's own namespace really logs in, and a cluster store, which has no
namespace of its own, proves that its endpoint answers (its logins are proven per namespace, at
each policy's first login).

The write carries the ``resourceVersion`` of the object the check read, as a policy's does
(:mod:`rotator.engine.draft`): if anyone wrote the store since (a spec edit, a deposed leader
still finishing its check), the API answers 409 and the whole decision, status and Events, is
dropped; the loop reads the store again and re-checks at once, then with backoff."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rotator.kube import Kube, KubeConflict
from rotator.models import (
    Condition,
    ConditionType,
    CredentialSecretUnusable,
    Event,
    InvalidSpecError,
    PermanentError,
    Settings,
    get_condition,
    reasons,
    set_condition,
)
from rotator.models.store import StoreRefKind, parse_store_spec
from rotator.policy.backoff import retry_delay
from rotator.stores.health import Health
from rotator.tenancy.resolve import ResolvedStore, store_path

HealthCheck = Callable[[ResolvedStore], Health]
DEFAULT_SETTINGS = Settings()


@dataclass(frozen=True)
class StoreChecked:
    health: Health
    events: list[Event] = field(default_factory=list)
    #: Not ready for want of its static credential Secret: the loop looks again within
    #: ``Settings.credential_secret_recheck``, so creating the Secret takes effect at once.
    awaiting_secret: bool = False
    #: The store changed between the read and the write (409): nothing was written nor is to be
    #: posted; read it again and re-check after ``retry_after`` seconds (0 the first time).
    stale: bool = False
    retry_after: float = 0.0


def check_store(
    obj: Mapping[str, Any],
    kind: StoreRefKind,
    kube: Kube,
    health_check: HealthCheck,
    now: datetime,
    allowed_addresses: Collection[str] = (),
    *,
    conflicts: int = 0,
    settings: Settings = DEFAULT_SETTINGS,
) -> StoreChecked:
    """``conflicts``: how many checks in a row ended stale before this one; a further conflict
    waits the backoff for that many (a store rewritten in a loop cannot spin the check)."""
    meta = obj.get("metadata") or {}
    name, namespace = str(meta.get("name", "")), meta.get("namespace")
    generation = int(meta.get("generation") or 0)
    try:
        health = _health(obj, kind, name, namespace, health_check, allowed_addresses)
        awaiting_secret = False
    except CredentialSecretUnusable as exc:
        health, awaiting_secret = Health(False, exc.reason, str(exc)), True
    raw = obj.get("status") or {}
    before: tuple[Condition, ...] = ()
    try:
        before = tuple(Condition.model_validate(c) for c in raw.get("conditions") or ())
    except ValueError:
        before = ()  # a hand-edited status: start afresh
    after = set_condition(
        before, ConditionType.READY, health.ready, health.reason, health.message, now, generation
    )
    previous = get_condition(before, ConditionType.READY)
    events = []
    if previous is None or (previous.reason, previous.message) != (health.reason, health.message):
        events.append(Event(health.reason, health.message, warning=not health.ready))
    if after != before or raw.get("observedGeneration") != generation:
        status = {"conditions": [c.to_patch() for c in after], "observedGeneration": generation}
        path = store_path(kind, namespace or "", name)
        try:
            kube.patch_status(path, status, resource_version=str(meta.get("resourceVersion") or "") or None)
        except KubeConflict:
            again = 0.0
            if conflicts > 0:
                seed = f"{kind}/{namespace or ''}/{name}"
                again = retry_delay(
                    conflicts - 1, base=settings.backoff_base, cap=settings.backoff_cap, seed=seed
                )
            return StoreChecked(health, [], stale=True, retry_after=again)
    return StoreChecked(health, events, awaiting_secret)


def _health(
    obj: Mapping[str, Any],
    kind: StoreRefKind,
    name: str,
    namespace: str | None,
    health_check: HealthCheck,
    allowed_addresses: Collection[str],
) -> Health:
    try:
        spec = parse_store_spec(kind, obj.get("spec") or {})
    except InvalidSpecError as exc:
        return Health(False, reasons.STORE_INVALID, str(exc))
    cluster = kind is StoreRefKind.CLUSTER_ROTATION_STORE
    resolved = ResolvedStore(kind, name, None if cluster else namespace, namespace or "", spec, "")
    if allowed_addresses and resolved.address not in allowed_addresses:
        message = f"address {resolved.address} is not in the operator's --allowed-store-address list"
        return Health(False, reasons.STORE_NOT_ALLOWED, message)
    try:
        return health_check(resolved)
    except CredentialSecretUnusable:
        raise
    except PermanentError as exc:
        return Health(False, exc.reason, str(exc))

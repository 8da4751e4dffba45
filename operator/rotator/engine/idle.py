"""The idle reconciler: no rotation running. Hands off when suspended; otherwise make sure the
Secret and store path are ours, adopt a value found in the store, repair a drifted Secret, and
ask the trigger chain whether a rotation starts now.

Between safety resyncs (``resync`` false: the handler was woken by a watch, or went straight on
after a rotation) an idle policy whose Secret is settled at ``status.currentVersion`` and which
starts no rotation is decided from status and the watched Secret alone: no store request, no
API request (the Secret comes from the watch cache), and no status write unless something moved.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import SecretStr

from rotator.engine.deps import Deps
from rotator.engine.draft import Draft, Reconciled, persist
from rotator.engine.dry_run import report_dry_run
from rotator.engine.lease import lease_requeue, maintain_lease
from rotator.engine.schedule import refresh_schedule
from rotator.engine.start import start_rotation
from rotator.engine.store import OpenedStore, open_store
from rotator.engine.trigger import decide_and_record, peek
from rotator.managed_secret import ensure_secret_is_ours, settled, write_secret
from rotator.models import ConditionType, Phase, RotationPolicySpec, RotationResult, reasons
from rotator.policy.scope import credential_spec_hash
from rotator.policy.triggers import Decision
from rotator.stores.base import Store, StoredVersion, VersionState
from rotator.stores.errors import StoreAuthError, StoreError, StoreUnavailable
from rotator.targets.credential import CredentialFormatError, decode_credential
from rotator.targets.shape import secret_values, settled_keys


def reconcile_idle(draft: Draft, spec: RotationPolicySpec, deps: Deps, *, resync: bool = True) -> Reconciled:
    opened = open_store(draft, spec, deps)
    if spec.dry_run:
        return report_dry_run(draft, spec, opened, deps)
    # Before the settled shortcut: a lease is renewed on time whatever else is going on.
    maintain_lease(draft, spec, opened, deps)
    if spec.suspend:
        return _suspended(draft, spec, opened, deps)
    # Refuse a foreign Secret before touching the store: a rotation must not start that could
    # never hand its credential over.
    secret = ensure_secret_is_ours(deps.kube, draft.ref, spec.secret.name)
    known = draft.status.current_version
    if (
        not resync
        and known
        and settled(
            secret,
            draft.ref,
            spec.secret.key,
            known,
            delete_with_policy=spec.secret.delete_with_policy,
            keys=settled_keys(spec),
        )
        and not peek(draft, spec, opened.location, store_has_value=True).rotate
    ):
        return _ready(
            draft, spec, decide_and_record(draft, spec, opened.location, store_has_value=True), deps
        )
    store = opened.store
    existed = store.ensure_owned(draft.ref.owner, spec.adopt)
    current = store.current()
    if current is not None and existed and not draft.status.current_version:
        _adopt(draft, spec, current, opened.location)
    missing = current is None and bool(draft.status.current_version)
    if missing:
        _credential_missing(draft, spec, opened.location)
    elif current is not None:
        _credential_present(draft, current)
    if current is not None and (
        resync
        or not settled(
            secret,
            draft.ref,
            spec.secret.key,
            current.version,
            delete_with_policy=spec.secret.delete_with_policy,
            keys=settled_keys(spec),
        )
    ):
        # The value itself is compared on a safety resync; otherwise a Secret that is exactly
        # what rotator wrote for the current version needs no read of it.
        _repair_drift(draft, spec, store, current, deps)
    decision = decide_and_record(draft, spec, opened.location, store_has_value=current is not None)
    if decision.rotate:
        return start_rotation(draft, spec, decision, current, opened.location, deps)
    return _ready(draft, spec, decision, deps, missing=missing)


def _ready(
    draft: Draft, spec: RotationPolicySpec, decision: Decision, deps: Deps, *, missing: bool = False
) -> Reconciled:
    """Idle and staying idle. ``missing``: the store lost the current version, and Ready says so."""
    if draft.status.last_result is not RotationResult.FAILED:
        draft.set(phase=Phase.IDLE)
    if not missing:
        draft.condition(ConditionType.READY, True, reasons.READY, decision.message)
    draft.condition(ConditionType.ROTATING, False, reasons.IDLE, "no rotation in progress")
    due = refresh_schedule(draft, spec, deps.metrics)
    requeue = deps.settings.resync_after(draft.ref.owner)
    if due is not None:
        requeue = max(0.0, min(requeue, (due - draft.now).total_seconds()))
    return persist(deps.kube, draft, lease_requeue(draft, requeue))


def _suspended(draft: Draft, spec: RotationPolicySpec, opened: OpenedStore, deps: Deps) -> Reconciled:
    """Hands off: no ownership tags, no drift repair over an emergency edit (a lease is still
    renewed: suspending rotations must not cut consumers off when it would end)."""
    has_value = opened.store.current() is not None
    decision = decide_and_record(draft, spec, opened.location, store_has_value=has_value)
    if decision.force_value_to_record:
        # Said where people look: the Event, not only a condition message that moves on.
        draft.event(
            reasons.FORCE_IGNORED,
            f"{decision.message}: recorded as handled, so resuming will not rotate for it; "
            "set a new value after resuming to rotate",
            warning=True,
        )
    draft.condition(ConditionType.READY, True, reasons.SUSPENDED, decision.message)
    refresh_schedule(draft, spec, deps.metrics)
    return persist(deps.kube, draft, lease_requeue(draft, deps.settings.idle_resync))


def _credential_missing(draft: Draft, spec: RotationPolicySpec, location: Mapping[str, str]) -> None:
    """The store lost the current version (a Vault restarted empty, a path deleted by hand).

    Not a trigger by itself: the Secret still holds the last value and the consumers keep working
    with it, so nothing is touched until a human chooses the recovery (restore the store, and the
    condition clears; or force a rotation, which issues a new credential with no old version to
    fall back to or revoke). Scheduled, maxAge and forced rotations start as usual.
    """
    where = location.get("path") or location.get("secretId") or "the store path"
    message = (
        f"store version {draft.status.current_version} (status.currentVersion) is missing from "
        f"{where}; Secret {spec.secret.name} still holds the last value. Recover: restore the "
        f"store, or force a rotation (rotator force {draft.ref.name} -n {draft.ref.namespace}) "
        "to issue a new credential"
    )
    draft.condition(ConditionType.DEGRADED, True, reasons.CREDENTIAL_MISSING, message, event_on_change=True)
    draft.condition(ConditionType.READY, False, reasons.CREDENTIAL_MISSING, message)


def _credential_present(draft: Draft, current: StoredVersion) -> None:
    """A store restored after :func:`_credential_missing`: the condition clears."""
    degraded = draft.status.condition(ConditionType.DEGRADED)
    if degraded is not None and degraded.reason == reasons.CREDENTIAL_MISSING:
        message = f"store version {current.version} is current again"
        draft.condition(
            ConditionType.DEGRADED, False, reasons.CREDENTIAL_RESTORED, message, event_on_change=True
        )


def _adopt(
    draft: Draft, spec: RotationPolicySpec, current: StoredVersion, location: Mapping[str, str]
) -> None:
    draft.set(current_version=current.version, credential_spec_hash=credential_spec_hash(spec, location))
    if current.created_at is not None:
        draft.set(credential_created_at=current.created_at)
    draft.event(reasons.STORE_ADOPTED, f"adopted the store's existing version {current.version}")


def _repair_drift(
    draft: Draft, spec: RotationPolicySpec, store: Store, current: StoredVersion, deps: Deps
) -> None:
    """Put the store's current value back into the Secret if someone changed it."""
    if current.state == VersionState.DESTROYED:
        message = f"store version {current.version} is destroyed; force a rotation to issue a new credential"
        draft.condition(
            ConditionType.DEGRADED, True, reasons.CURRENT_UNREADABLE, message, event_on_change=True
        )
        return
    try:
        value: SecretStr = store.read_value(current.version)
        credential = decode_credential(spec.credential.kind, value, spec.credential.fields)
    except (StoreUnavailable, StoreAuthError):
        raise
    except (StoreError, CredentialFormatError) as exc:
        # The current credential cannot be read: repair is impossible, but a rotation is not.
        draft.condition(
            ConditionType.DEGRADED, True, reasons.CURRENT_UNREADABLE, str(exc), event_on_change=True
        )
        return
    history = draft.status.history
    rotation_id = history[0].id if history else "adopted"
    changed = write_secret(
        deps.kube,
        draft.ref,
        spec.secret.name,
        secret_values(spec, credential),
        current.version,
        rotation_id,
        delete_with_policy=spec.secret.delete_with_policy,
    )
    if changed:
        draft.event(
            reasons.SECRET_DRIFT_REPAIRED,
            f"Secret {spec.secret.name} re-synced to store version {current.version}",
            warning=draft.status.last_rotation_time is not None,
        )

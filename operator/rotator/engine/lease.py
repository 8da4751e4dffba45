"""The current credential's lease at idle (``vaultDatabase``): known, renewed, and watched for
its end. Decisions are :mod:`rotator.policy.lease`'s; this module does the I/O around them.

``status.lease`` records the lease of ``status.currentVersion``. It is looked up once per new
current version (after a rotation, an adoption, a rollback), renewed when half of its TTL has
passed, and otherwise costs nothing: an idle policy between those moments makes no request.
A renewal that Vault caps (the role's ``max_ttl``) records that the lease will end, and the
trigger chain's ``maxAge`` brings the rotation before it (``rotator.engine.facts.max_age``). A
lease Vault no longer knows (revoked behind rotator's back, or expired) is reported in the
Degraded condition, and the same ``maxAge`` starts a rotation at once.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import SecretStr

from rotator.engine.deps import Deps
from rotator.engine.draft import Draft
from rotator.engine.store import OpenedStore
from rotator.models import ConditionType, LeaseStatus, PermanentError, RotationPolicySpec, StoreKind, reasons
from rotator.policy.lease import renew_at
from rotator.stores.errors import StoreVersionNotFound
from rotator.targets.base import LeasedTarget, LeaseGone
from rotator.targets.credential import CredentialFormatError, decode_credential
from rotator.targets.opener import TargetContext
from rotator.targets.vault_database import FIELD, LEASE_ID


def maintain_lease(draft: Draft, spec: RotationPolicySpec, opened: OpenedStore, deps: Deps) -> None:
    if spec.credential.vault_database is None:
        if draft.status.lease is not None:
            draft.set(lease=None)  # the credential kind changed: no lease to look after
        return
    if opened.resolved.kind is not StoreKind.VAULT:
        # Checked before anything starts: the target would use the store's Vault session.
        raise PermanentError(
            reasons.TARGET_INVALID,
            f"{FIELD}: the policy's store ({opened.resolved.ref}) is {opened.resolved.kind}, not Vault; "
            "Vault database credentials are read with the store's Vault session",
        )
    version = draft.status.current_version
    lease = draft.status.lease
    known = lease if lease is not None and lease.version == version else None
    due = renew_at(known)
    if version is None or (known is not None and (due is None or draft.now < due)):
        return
    try:
        credential = decode_credential(
            spec.credential.kind, opened.store.read_value(version), spec.credential.fields
        )
    except (StoreVersionNotFound, CredentialFormatError):
        return  # the rest of the idle reconcile reports a current version it cannot read
    target = deps.open_target(
        deps.kube,
        draft.ref,
        spec,
        lambda: SecretStr(""),  # nothing is minted here
        TargetContext(vault=lambda: deps.open_vault_session(draft.ref, opened.resolved)),
    )
    assert isinstance(target, LeasedTarget), "a vaultDatabase target has leases"
    try:
        info = target.renew(credential, known.ttl_seconds) if known is not None else target.lookup(credential)
    except LeaseGone as exc:
        lease_id = credential.get(LEASE_ID)
        _gone(
            draft, version, lease_id.get_secret_value() if lease_id is not None else "none", known, str(exc)
        )
        return
    draft.set(
        lease=LeaseStatus(
            version=version,
            id=info.id,
            issued_at=info.issued_at or (known.issued_at if known is not None else None),
            # Whole seconds, as status keeps them: the gauge and status say the same.
            expires_at=(draft.now + timedelta(seconds=info.ttl_seconds)).replace(microsecond=0),
            ttl_seconds=info.granted_seconds,
            renewable=info.renewable,
            max_ttl_reached=info.capped,
        )
    )
    if info.capped:
        draft.event(
            reasons.LEASE_MAX_TTL,
            f"lease {info.id} reached its max TTL: Vault extends it only {info.ttl_seconds}s more; "
            "a rotation replaces the credential before it ends",
        )


def _gone(draft: Draft, version: str, lease_id: str, known: LeaseStatus | None, why: str) -> None:
    """Consumers of the current credential are losing (or lost) access: say so, and let the
    lease's ``maxAge`` start a rotation now."""
    draft.set(
        lease=LeaseStatus(
            version=version,
            id=lease_id,
            issued_at=known.issued_at if known is not None else None,
            expires_at=draft.now,
            ttl_seconds=known.ttl_seconds if known is not None else 0,
            renewable=False,
            gone=True,
        )
    )
    message = (
        f"the lease of store version {version} is gone, revoked or expired outside rotator "
        f"({why}); rotating to issue a new credential"
    )
    draft.condition(ConditionType.DEGRADED, True, reasons.LEASE_REVOKED, message, event_on_change=True)


def lease_requeue(draft: Draft, requeue: float) -> float:
    """Look again no later than the lease's renewal time."""
    due = renew_at(draft.status.lease)
    if due is None:
        return requeue
    return max(0.0, min(requeue, (due - draft.now).total_seconds()))

"""When to renew the current credential's lease, and when it must be replaced: pure, clock injected.

A lease (``vaultDatabase``) is renewed at half of what it was granted: a renewal that fails
(Vault down for a while) still leaves the other half to retry in, which is how Vault Agent
and the Vault Secrets Operator pace renewals too. Each renewal asks for the TTL the lease was
issued with; when Vault grants less, the role's ``max_ttl`` is near and the lease *will* end.
Then (and for a lease that is not renewable, or gone) a rotation must come before the end, with
half a TTL to spare for the rollout: that moment is the lease's "rotate by", and it shortens
``maxAge`` (or stands in for it when unset).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rotator.models import LeaseStatus

#: Renew when this share of the granted TTL has passed; rotate this share of a TTL before the end.
RENEW_SHARE = 0.5


def renew_at(lease: LeaseStatus | None) -> datetime | None:
    """When the lease wants renewing; None when renewing would not extend it."""
    if lease is None or not lease.renewable or lease.max_ttl_reached or lease.gone:
        return None
    return lease.expires_at - timedelta(seconds=lease.ttl_seconds * (1 - RENEW_SHARE))


def rotate_by(lease: LeaseStatus | None) -> datetime | None:
    """When a rotation must start so the lease's end never catches consumers; None while renewals
    keep extending it."""
    if lease is None or renew_at(lease) is not None:
        return None
    if lease.gone:
        return lease.expires_at  # already unusable: at once
    return lease.expires_at - timedelta(seconds=lease.ttl_seconds * RENEW_SHARE)


def lease_max_age(
    lease: LeaseStatus | None, current_version: str | None, issued: datetime | None
) -> timedelta | None:
    """The credential age at which the lease forces a rotation (see :func:`rotate_by`), counted
    from ``issued`` like ``maxAge``; None without a lease of the current version that ends."""
    if lease is None or issued is None or lease.version != current_version:
        return None
    deadline = rotate_by(lease)
    return None if deadline is None else max(timedelta(0), deadline - issued)


def effective_max_age(configured: timedelta | None, derived: timedelta | None) -> timedelta | None:
    """``maxAge`` as the trigger chain and the schedule use it: the sooner of the spec's and the
    lease's (a credential whose lease ends must be replaced before, whatever the spec says)."""
    if configured is None or derived is None:
        return configured if derived is None else derived
    return min(configured, derived)

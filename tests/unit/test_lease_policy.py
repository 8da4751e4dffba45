"""When a lease is renewed and when it forces a rotation (``rotator.policy.lease``), as a table
with a fake clock; and ``maxAge`` as the trigger chain and the schedule see it (engine facts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rotator.engine.facts import max_age, next_due, trigger_inputs
from rotator.models import LeaseStatus, RotationPolicyStatus, parse_spec
from rotator.policy.lease import effective_max_age, lease_max_age, renew_at, rotate_by
from rotator.policy.scope import credential_spec_hash
from rotator.policy.triggers import TriggerInputs, TriggerReason, decide

NOW = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
LEASE = LeaseStatus(
    version="3", id="database/creds/app/x", expires_at=NOW + HOUR, ttl_seconds=3600, renewable=True
)


def lease(**changes: object) -> LeaseStatus:
    return LEASE.model_copy(update=changes)


@pytest.mark.parametrize(
    ("given", "renew", "rotate"),
    [
        pytest.param(None, None, None, id="no-lease"),
        pytest.param(LEASE, NOW + HOUR / 2, None, id="renewable-renews-at-half-its-ttl"),
        pytest.param(lease(expires_at=NOW + HOUR / 4), NOW - HOUR / 4, None, id="overdue-renewal-is-due-now"),
        pytest.param(
            lease(max_ttl_reached=True), None, NOW + HOUR / 2, id="capped-rotates-half-a-ttl-before-end"
        ),
        pytest.param(lease(renewable=False), None, NOW + HOUR / 2, id="not-renewable-rotates-before-end"),
        pytest.param(lease(gone=True, renewable=False, expires_at=NOW), None, NOW, id="gone-rotates-at-once"),
    ],
)
def test_renewal_and_rotation_times(
    given: LeaseStatus | None, renew: datetime | None, rotate: datetime | None
) -> None:
    assert renew_at(given) == renew
    assert rotate_by(given) == rotate


def test_lease_max_age_counts_from_the_credential_and_belongs_to_the_current_version() -> None:
    capped = lease(max_ttl_reached=True)
    issued = NOW - 23 * HOUR
    assert lease_max_age(capped, "3", issued) == 23 * HOUR + HOUR / 2
    assert lease_max_age(capped, "4", issued) is None, "a lease of another version says nothing"
    assert lease_max_age(capped, "3", None) is None
    assert lease_max_age(LEASE, "3", issued) is None, "renewals still extend it"
    assert lease_max_age(lease(gone=True, renewable=False, expires_at=NOW), "3", NOW + HOUR) == timedelta(0)


@pytest.mark.parametrize(
    ("configured", "derived", "expected"),
    [
        (None, None, None),
        (HOUR, None, HOUR),
        (None, HOUR, HOUR),
        (2 * HOUR, HOUR, HOUR),
        (HOUR, 2 * HOUR, HOUR),
    ],
)
def test_the_sooner_max_age_wins(
    configured: timedelta | None, derived: timedelta | None, expected: timedelta | None
) -> None:
    assert effective_max_age(configured, derived) == expected


SPEC = parse_spec(
    {
        "secret": {"name": "db"},
        "credential": {"vaultDatabase": {"role": "app"}},
        "storeRef": {"name": "vault"},
        "path": "db",
        "schedule": {"interval": "720h"},
    }
)


def status(**changes: object) -> RotationPolicyStatus:
    base = RotationPolicyStatus(
        current_version="3",
        credential_created_at=NOW - 23 * HOUR,
        last_rotation_time=NOW - 23 * HOUR,
        credential_spec_hash=credential_spec_hash(SPEC, {}),
        lease=lease(max_ttl_reached=True, expires_at=NOW + HOUR),
    )
    return base.model_copy(update=changes)


def test_a_capped_lease_sets_max_age_when_unset_and_the_schedule_follows() -> None:
    assert max_age(SPEC, status()) == 23 * HOUR + HOUR / 2
    assert next_due(SPEC, status(), "seed", NOW) == NOW + HOUR / 2, "the next rotation comes before the end"
    assert max_age(SPEC, status(lease=lease(expires_at=NOW + HOUR))) is None, "renewable: the interval rules"


def test_the_chain_rotates_when_the_lease_must_be_replaced() -> None:
    def inputs(now: datetime) -> TriggerInputs:
        return trigger_inputs(SPEC, status(), {}, seed="seed", now=now, store_has_value=True, location={})

    early = decide(inputs(NOW), NOW)
    assert not early.rotate
    later = NOW + HOUR / 2
    due = decide(inputs(later), later)
    assert due.rotate
    assert due.reason is TriggerReason.MAX_AGE_EXCEEDED
    assert due.message.endswith("(from its lease, which Vault will not extend)")

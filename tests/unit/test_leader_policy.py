"""Leader election decisions (rotator.policy.leader) as a table, on a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rotator.models import LeaderElection
from rotator.policy.leader import (
    Action,
    LeaseRecord,
    Observed,
    claim,
    decide,
    format_micro_time,
    lease_spec,
    observe,
    record_of,
    release,
    still_leading,
)

ME, OTHER = "rotator-a_1", "rotator-b_2"
WALL = datetime(2026, 12, 1, 8, 0, 0, 123456, tzinfo=UTC)
HELD = LeaseRecord(OTHER, 15.0, WALL, WALL, 3)


@pytest.mark.parametrize(
    ("observed", "now", "action", "message"),
    [
        (None, 100.0, Action.CREATE, "no Lease yet"),
        (Observed(LeaseRecord(ME, 15.0, WALL, WALL, 0), 100.0), 200.0, Action.RENEW, "held by this replica"),
        (Observed(LeaseRecord("", 1.0, WALL, WALL, 3), 100.0), 100.0, Action.ACQUIRE, "released"),
        (Observed(HELD, 100.0), 100.0, Action.WAIT, "held by rotator-b_2; expires in 15.0s"),
        (Observed(HELD, 100.0), 114.9, Action.WAIT, "expires in 0.1s"),
        (Observed(HELD, 100.0), 115.0, Action.ACQUIRE, "rotator-b_2 has not renewed it for 15s"),
        (Observed(HELD, 100.0), 999.0, Action.ACQUIRE, "has not renewed"),
        # The holder's own duration counts, not ours.
        (Observed(LeaseRecord(OTHER, 60.0, WALL, WALL, 0), 100.0), 130.0, Action.WAIT, "expires in 30.0s"),
    ],
)
def test_decide(observed: Observed | None, now: float, action: Action, message: str) -> None:
    decision = decide(observed, ME, now)
    assert decision.action is action
    assert message in decision.message


def test_expiry_counts_from_our_own_sighting_not_the_written_renew_time() -> None:
    """A Lease renewed an hour ago by the writer's clock is not expired for a standby that
    has just started: clocks of two nodes need not agree, so it waits a full duration."""
    stale_by_its_clock = LeaseRecord(OTHER, 15.0, WALL - timedelta(hours=1), WALL - timedelta(hours=1), 0)
    first_sight = observe(None, stale_by_its_clock, now=500.0)
    assert decide(first_sight, ME, 500.0).action is Action.WAIT
    assert decide(first_sight, ME, 515.0).action is Action.ACQUIRE


def test_a_renewal_restarts_the_count_and_an_unchanged_record_does_not() -> None:
    seen = observe(None, HELD, now=100.0)
    assert observe(seen, HELD, now=110.0) is seen
    renewed = observe(seen, claim(HELD, OTHER, WALL + timedelta(seconds=2), 15.0), now=110.0)
    assert renewed.at == 110.0
    assert decide(renewed, ME, 120.0).action is Action.WAIT
    assert decide(renewed, ME, 125.0).action is Action.ACQUIRE


@pytest.mark.parametrize(
    ("before", "expected"),
    [
        (None, LeaseRecord(ME, 15.0, WALL, WALL, 0)),
        (HELD, LeaseRecord(ME, 15.0, WALL, WALL, 4)),
        (LeaseRecord("", 1.0, WALL, WALL, 4), LeaseRecord(ME, 15.0, WALL, WALL, 5)),
        (
            LeaseRecord(ME, 15.0, WALL - timedelta(minutes=5), WALL - timedelta(seconds=2), 7),
            LeaseRecord(ME, 15.0, WALL - timedelta(minutes=5), WALL, 7),
        ),
    ],
    ids=["create", "take-over", "after-release", "renew-keeps-acquire-time-and-count"],
)
def test_claim(before: LeaseRecord | None, expected: LeaseRecord) -> None:
    assert claim(before, ME, WALL, 15.0) == expected


def test_release_empties_the_holder_and_shortens_the_wait() -> None:
    released = release(LeaseRecord(ME, 15.0, WALL, WALL, 4), WALL)
    assert (released.holder, released.lease_duration, released.transitions) == ("", 1.0, 4)
    assert decide(Observed(released, 100.0), OTHER, 100.0).action is Action.ACQUIRE


@pytest.mark.parametrize(
    ("renewed_at", "now", "leading"),
    [(None, 0.0, False), (100.0, 100.0, True), (100.0, 109.9, True), (100.0, 110.0, False)],
)
def test_still_leading_ends_at_the_renew_deadline(
    renewed_at: float | None, now: float, leading: bool
) -> None:
    assert still_leading(renewed_at, now, renew_deadline=10.0) is leading


def test_the_leader_stops_before_any_standby_may_start() -> None:
    """With the defaults, on a 0.1 s grid: the leader's last moment of acting comes a full
    ``lease_duration - renew_deadline`` before a standby's first chance to take over."""
    config = LeaderElection()
    sent = 100.0  # the leader's last successful renewal was sent then; a standby saw it later
    seen = observe(None, LeaseRecord(ME, config.lease_duration, WALL, WALL, 0), now=sent + 0.01)
    grid = [t / 10 for t in range(1000, 3000)]
    last_leader_act = max(t for t in grid if still_leading(sent, t, config.renew_deadline))
    first_standby_act = min(t for t in grid if decide(seen, OTHER, t).action is Action.ACQUIRE)
    assert first_standby_act - last_leader_act >= config.lease_duration - config.renew_deadline


def test_the_wire_format_round_trips() -> None:
    record = LeaseRecord(ME, 15.0, WALL, WALL + timedelta(seconds=2), 3)
    spec = lease_spec(record)
    assert spec == {
        "holderIdentity": ME,
        "leaseDurationSeconds": 15,
        "leaseTransitions": 3,
        "acquireTime": "2026-12-01T08:00:00.123456Z",
        "renewTime": "2026-12-01T08:00:02.123456Z",
    }
    assert record_of({"spec": spec}) == record


def test_a_fractional_duration_is_rounded_up_on_the_wire() -> None:
    assert lease_spec(LeaseRecord(ME, 2.5))["leaseDurationSeconds"] == 3


def test_a_malformed_lease_reads_as_empty_fields() -> None:
    assert record_of(
        {"spec": {"holderIdentity": None, "renewTime": "yesterday", "leaseTransitions": "2"}}
    ) == (LeaseRecord())
    assert record_of({}) == LeaseRecord()
    assert format_micro_time(WALL) == "2026-12-01T08:00:00.123456Z"


@pytest.mark.parametrize(
    ("duration", "deadline", "retry"),
    [(10.0, 10.0, 2.0), (15.0, 10.0, 9.0), (15.0, 20.0, 2.0), (15.0, 10.0, 0.0)],
)
def test_timings_out_of_order_are_refused(duration: float, deadline: float, retry: float) -> None:
    with pytest.raises(ValueError, match="lease duration > renew deadline"):
        LeaderElection(lease_duration=duration, renew_deadline=deadline, retry_period=retry)


def test_the_defaults_are_controller_runtimes() -> None:
    config = LeaderElection()
    assert (config.lease_name, config.lease_duration, config.renew_deadline, config.retry_period) == (
        "rotator-leader",
        15.0,
        10.0,
        2.0,
    )


def test_an_earlier_container_of_this_pod_is_taken_over_at_once() -> None:
    """The kubelet restarts a container only after it exited, and a pod's name is unique while
    it lives: a Lease held by ``<this pod>_<old uuid>`` has no living holder."""
    mine_before_crash = Observed(LeaseRecord("rotator-7d9f-x2_old", 15.0, WALL, WALL, 2), 100.0)
    assert (
        decide(mine_before_crash, "rotator-7d9f-x2_new", 100.0, pod="rotator-7d9f-x2").action
        is Action.ACQUIRE
    )
    assert decide(mine_before_crash, "rotator-7d9f-x2_new", 100.0).action is Action.WAIT, (
        "no pod name, no shortcut"
    )
    other_pod = Observed(LeaseRecord("rotator-7d9f-x21_old", 15.0, WALL, WALL, 2), 100.0)
    assert decide(other_pod, "rotator-7d9f-x2_new", 100.0, pod="rotator-7d9f-x2").action is Action.WAIT

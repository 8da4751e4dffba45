"""Schedules through the engine: a maintenance window holds a due rotation and publishes the
opening as status.nextRotationTime; an unknown time zone is InvalidSpec naming the field; a
timestamp force older than the current credential is recorded, said once, and rotates nothing.

T0 is Tuesday 2026-12-01 08:00 UTC; the window (22:00-23:00 UTC, every day) is closed then.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rotator.models import reasons
from rotator.models.keys import FORCE_ROTATE
from rotator.policy.triggers import TriggerReason
from tests.engine.harness import T0, EngineBench

EVENING = {"start": "22:00", "end": "23:00"}
OPENING = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)


def test_window_moves_the_next_rotation_to_its_opening_and_fires_there(bench: EngineBench) -> None:
    bench.seed(schedule={"interval": "10m", "window": EVENING})
    bench.rotate_to_end()  # the initial rotation does not wait for the window
    bench.tick(15 * 60)
    held = bench.reconcile()
    assert held.status.rotation is None
    assert held.status.next_rotation_time == OPENING
    assert held.condition("Ready")[2] == "next rotation at 2026-12-01T22:00:00Z"
    bench.now = OPENING
    started = bench.reconcile()
    assert started.status.rotation is not None
    assert started.status.rotation.reason is TriggerReason.DUE


def test_a_window_added_after_the_due_time_was_published_holds_the_rotation(bench: EngineBench) -> None:
    bench.seed(schedule={"interval": "10m"})
    bench.rotate_to_end()
    bench.edit_spec(schedule={"interval": "10m", "window": EVENING})
    bench.tick(11 * 60)  # status.nextRotationTime (published without the window) has passed
    held = bench.reconcile()
    assert held.status.rotation is None
    assert held.condition("Ready")[2].endswith(
        "waits for the maintenance window Mon,Tue,Wed,Thu,Fri,Sat,Sun 22:00-23:00 UTC, "
        "which opens at 2026-12-01T22:00:00Z"
    )
    assert held.status.next_rotation_time == OPENING
    assert bench.reconcile().status.rotation is None  # and stays held until the opening


def test_cron_time_zone_is_read_from_the_spec(bench: EngineBench) -> None:
    bench.seed(schedule={"cron": "0 9 * * *", "timeZone": "Asia/Tokyo"})
    bench.rotate_to_end()
    # 09:00 in Tokyo (UTC+9) is midnight UTC: the first after T0 is 2 December (UTC: 09:00 today).
    assert bench.reconcile().status.next_rotation_time == datetime(2026, 12, 2, 0, 0, tzinfo=UTC)


def test_unknown_time_zone_is_invalid_spec_naming_the_field(bench: EngineBench) -> None:
    bench.seed(schedule={"cron": "0 3 * * *", "timeZone": "Mars/Olympus_Mons"})  # the CRD's shape
    run = bench.reconcile()
    status, reason, message = run.condition("Ready")
    assert (status, reason) == ("False", reasons.INVALID_SPEC)
    assert message.startswith("spec.schedule.timeZone: unknown time zone 'Mars/Olympus_Mons'")


def test_an_older_timestamp_force_is_satisfied_recorded_and_said_once(bench: EngineBench) -> None:
    bench.seed()
    bench.rotate_to_end()
    old = "2026-11-30T00:00:00Z"  # what Git pinned, before the current credential
    bench.annotate(FORCE_ROTATE, old)
    run = bench.reconcile()
    assert run.status.rotation is None
    assert run.status.last_handled_force_rotate == old
    assert run.reasons == [reasons.FORCE_IGNORED]
    assert "already satisfied" in run.events[0][1]
    assert bench.reconcile().events == []  # said once
    newer = (T0 + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    bench.tick(10 * 60)
    bench.annotate(FORCE_ROTATE, newer)
    forced = bench.reconcile()
    assert forced.status.rotation is not None
    assert forced.status.rotation.reason is TriggerReason.FORCED

"""Schedules and force values through the operator on the running stack (emulator, OpenBao, the
operator as a child process), not only in unit tables:

- an interval fires (1m, the shortest the CRD admits), a cron line fires in its own time zone
  (an hour field that matches now only in Asia/Kolkata), and a maintenance window that is closed
  now holds a due rotation back and publishes its opening as status.nextRotationTime: three
  policies on one stack at once, so the minute is waited for once;
- a GitOps tool restoring an older force-rotate timestamp after on-call set a newer one causes
  no second rotation.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from rotator.kube import policy_path
from rotator.models.keys import FORCE_ROTATE
from rotator.models.status import format_time, parse_time
from rotator.sandbox import demo
from tests.fixtures.rotation import NAMESPACE, Bench, Obj


def extra_policy(bench: Bench, name: str, schedule: dict[str, Any]) -> None:
    """A second policy on the same stack: its own Secret and path, no consumers."""
    body = bench.policy_body(deployment=False, extra_spec={"schedule": schedule})
    body["metadata"]["name"] = name
    body["spec"]["secret"]["name"] = f"{name}-credentials"
    body["spec"]["path"] = f"{bench.policy_path}-{name}"
    bench.kube.create(policy_path(NAMESPACE), body)


def status_of(bench: Bench, name: str) -> Obj:
    return (bench.kube.get_policy(NAMESPACE, name) or {}).get("status") or {}


def wait_history(bench: Bench, name: str, count: int, timeout: float = 150) -> Obj:
    deadline = time.monotonic() + timeout
    status: Obj = {}
    while time.monotonic() < deadline:
        status = status_of(bench, name)
        if len(status.get("history") or []) >= count and not status.get("rotation"):
            return status
        time.sleep(0.2)
    raise AssertionError(f"{name}: timed out waiting for {count} rotation(s); status: {status}")


@pytest.mark.long(seconds=65)
def test_interval_and_cron_fire_and_a_closed_window_holds_a_due_rotation(bench: Bench) -> None:
    now = datetime.now(UTC)
    kolkata = now.astimezone(ZoneInfo("Asia/Kolkata")).hour
    # In UTC these hours are 4-6 hours away: the line fires within the minute only if the zone is read.
    cron = f"* {kolkata},{(kolkata + 1) % 24} * * *"
    opening = (now + timedelta(hours=3)).replace(second=0, microsecond=0)
    window = {"start": f"{opening:%H:%M}", "end": f"{opening + timedelta(hours=1):%H:%M}"}
    bench.seed(extra_spec={"schedule": {"interval": "1m"}})
    extra_policy(bench, "cron-kolkata", {"cron": cron, "timeZone": "Asia/Kolkata"})
    extra_policy(bench, "window-closed", {"interval": "1m", "window": window})
    bench.operator.start()

    held = wait_history(bench, "window-closed", 1)  # the initial rotation does not wait
    assert held["nextRotationTime"] == format_time(opening)

    interval = wait_history(bench, demo.POLICY, 2)
    assert interval["history"][0]["reason"] == "Due"
    first, second = (parse_time(h["startedAt"]) for h in reversed(interval["history"][:2]))
    assert second - first >= timedelta(minutes=1)
    cron_status = wait_history(bench, "cron-kolkata", 2)
    assert cron_status["history"][0]["reason"] == "Due"

    # By now the window policy's interval has long passed: it is due, and held.
    last = parse_time(held["lastRotationTime"])
    while datetime.now(UTC) < last + timedelta(minutes=1, seconds=3):
        time.sleep(0.2)
    held = status_of(bench, "window-closed")
    assert len(held["history"]) == 1, held["history"]
    assert not held.get("rotation")
    assert held["nextRotationTime"] == format_time(opening)
    ready = next(c for c in held["conditions"] if c["type"] == "Ready")
    assert ready["message"] == f"next rotation at {format_time(opening)}"


def now_rfc3339(offset: timedelta = timedelta(0)) -> str:
    return format_time(datetime.now(UTC) + offset)


def test_gitops_restoring_an_older_force_timestamp_does_not_rotate_again(bench: Bench) -> None:
    """Git pins force-rotate=A; on-call sets B (newer); the GitOps tool puts A back: no rotation
    for A (it is older than the credential B made), recorded as handled and said in an Event."""
    git_value = now_rfc3339(-timedelta(seconds=2))
    bench.seed(create_policy=False)
    body = bench.policy_body()
    body["metadata"]["annotations"] = {FORCE_ROTATE: git_value}
    bench.kube.create(policy_path(NAMESPACE), body)
    bench.operator.start()
    first = bench.wait_rotations(1)["status"]
    assert first["history"][0]["reason"] == "Forced"

    time.sleep(1.1)  # on-call's timestamp is a later second than the first credential's
    bench.force(now_rfc3339())
    second = bench.wait_rotations(2)["status"]
    assert second["history"][0]["reason"] == "Forced"

    bench.force(git_value)  # the self-heal
    bench.wait(
        lambda obj: (obj.get("status") or {}).get("lastHandledForceRotate") == git_value,
        what="the restored value recorded as handled",
    )
    status = bench.status()
    assert len(status["history"]) == 2
    assert not status.get("rotation")
    ignored = [e for e in bench.events() if e.get("reason") == "ForceRotateIgnored"]
    assert any("already satisfied" in str(e.get("message")) for e in ignored), ignored

    bench.force("plain-value")  # a non-timestamp value keeps "each new value rotates once"
    assert bench.wait_rotations(3)["status"]["history"][0]["reason"] == "Forced"

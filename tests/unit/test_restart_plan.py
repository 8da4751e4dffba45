"""Which workloads a rotation restarts (``restart.auto`` + explicit targets), and when a restart
is skipped because another policy's restart already covered the new value: pure tables."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from rotator.models.keys import RESTARTED_AT, RESTARTED_FOR, ROTATION_ID
from rotator.workloads.discovery import Consumer, discovered_consumers, restart_plan
from rotator.workloads.restarter import already_restarted, restart_patch, restarted_for

SECRET = "orders-db"


def workload(
    name: str, *, env: str | None = None, env_from: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A workload object as a namespaced list returns it (items carry no kind)."""
    container: dict[str, Any] = {"name": "app", "image": "app:1"}
    if env:
        container["env"] = [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": env, "key": "pw"}}}]
    if env_from:
        container["envFrom"] = [{"secretRef": {"name": env_from}}]
    pod_spec: dict[str, Any] = {"containers": [container], **extra.pop("pod", {})}
    return {"metadata": {"name": name, **extra}, "spec": {"template": {"spec": pod_spec}}}


def volume(name: str) -> dict[str, Any]:
    return {"pod": {"volumes": [{"name": "v", "secret": {"secretName": name}}]}}


def projected(name: str) -> dict[str, Any]:
    return {"pod": {"volumes": [{"name": "p", "projected": {"sources": [{"secret": {"name": name}}]}}]}}


LISTED: dict[str, list[dict[str, Any]]] = {
    "Deployment": [
        workload("web", env=SECRET),
        workload("api", env_from=SECRET),
        workload("unrelated", env="other"),
        workload("leaving", env=SECRET, deletionTimestamp="2026-12-01T08:00:00Z"),
    ],
    "StatefulSet": [workload("db", **volume(SECRET)), workload("cache", **volume("other"))],
    "DaemonSet": [workload("agent", **projected(SECRET)), {"metadata": {}}, {"spec": {}}],
}

PLANS = [
    pytest.param([], None, [], id="nothing"),
    pytest.param(
        [("Deployment", "web")], None, [Consumer("Deployment", "web", explicit=True)], id="explicit-only"
    ),
    pytest.param(
        [],
        LISTED,
        [
            Consumer("Deployment", "api", explicit=False),
            Consumer("Deployment", "web", explicit=False),
            Consumer("StatefulSet", "db", explicit=False),
            Consumer("DaemonSet", "agent", explicit=False),
        ],
        id="auto: every kind, by kind then name; deleting and non-consumers left out",
    ),
    pytest.param(
        [("StatefulSet", "db"), ("Deployment", "unrelated")],
        LISTED,
        [
            Consumer("StatefulSet", "db", explicit=True),
            Consumer("Deployment", "unrelated", explicit=True),
            Consumer("Deployment", "api", explicit=False),
            Consumer("Deployment", "web", explicit=False),
            Consumer("DaemonSet", "agent", explicit=False),
        ],
        id="explicit first, discovered after, each workload once",
    ),
    pytest.param(
        [("DaemonSet", "web")],
        {"Deployment": [workload("web", env=SECRET)]},
        [Consumer("DaemonSet", "web", explicit=True), Consumer("Deployment", "web", explicit=False)],
        id="same name, other kind: two workloads",
    ),
    pytest.param([], {}, [], id="auto in an empty namespace"),
]


@pytest.mark.parametrize(("explicit", "listed", "expected"), PLANS)
def test_restart_plan(
    explicit: list[tuple[str, str]], listed: dict[str, list[dict[str, Any]]] | None, expected: list[Consumer]
) -> None:
    assert list(restart_plan(explicit, SECRET, listed)) == expected


def test_discovered_consumers_ignore_kinds_rotator_does_not_restart() -> None:
    assert discovered_consumers({"CronJob": [workload("nightly", env=SECRET)]}, SECRET) == []


def test_consumer_key_is_the_status_spelling() -> None:
    assert Consumer("StatefulSet", "db", explicit=False).key == "StatefulSet/db"


# --- the restart decision -------------------------------------------------------------------------


def template(**annotations: str) -> dict[str, Any]:
    return {"spec": {"template": {"metadata": {"annotations": annotations}}}}


def record(**writers: str) -> str:
    return json.dumps(writers)


SKIPS = [
    pytest.param(template(), "r2", SECRET, False, id="never restarted"),
    pytest.param(
        template(**{ROTATION_ID: "r2"}), "r2", SECRET, True, id="this rotation restarted it (resume)"
    ),
    pytest.param(template(**{ROTATION_ID: "r1"}), "r2", SECRET, False, id="an older rotation restarted it"),
    pytest.param(
        template(**{ROTATION_ID: "other-9", RESTARTED_FOR: record(**{SECRET: "r2", "other": "other-9"})}),
        "r2",
        SECRET,
        True,
        id="another policy restarted it after this rotation wrote the Secret",
    ),
    pytest.param(
        template(**{ROTATION_ID: "other-9", RESTARTED_FOR: record(**{SECRET: "r1", "other": "other-9"})}),
        "r2",
        SECRET,
        False,
        id="another policy restarted it before this rotation wrote the Secret",
    ),
    pytest.param(
        template(**{ROTATION_ID: "other-9", RESTARTED_FOR: record(other="other-9")}),
        "r2",
        SECRET,
        False,
        id="another policy restarted it without seeing this Secret",
    ),
    pytest.param(
        template(**{ROTATION_ID: "other-9", RESTARTED_FOR: record(**{SECRET: "r2"})}),
        "r2-rollback",
        None,
        False,
        id="rollback: only its own restart id counts",
    ),
    pytest.param(
        template(**{ROTATION_ID: "other-9", RESTARTED_FOR: "{not json"}),
        "r2",
        SECRET,
        False,
        id="unreadable record: restart",
    ),
    pytest.param(
        template(**{ROTATION_ID: "other-9", RESTARTED_FOR: '["r2"]'}),
        "r2",
        SECRET,
        False,
        id="record not a map",
    ),
]


@pytest.mark.parametrize(("workload_obj", "restart_id", "secret", "skip"), SKIPS)
def test_already_restarted(
    workload_obj: dict[str, Any], restart_id: str, secret: str | None, skip: bool
) -> None:
    assert already_restarted(workload_obj, restart_id, secret) is skip


def test_restarted_for_keeps_only_string_entries() -> None:
    assert restarted_for(template(**{RESTARTED_FOR: '{"a": "r1", "b": 2}'})) == {"a": "r1"}
    assert restarted_for(template()) == {}


def test_restart_patch_records_the_secret_writers_or_drops_an_old_record() -> None:
    now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    patched = restart_patch("r2", now, {"b": "x-1", SECRET: "r2"})["spec"]["template"]["metadata"][
        "annotations"
    ]
    assert patched[ROTATION_ID] == "r2"
    assert patched[RESTARTED_AT] == "2026-12-01T08:00:00Z"
    assert json.loads(patched[RESTARTED_FOR]) == {"b": "x-1", SECRET: "r2"}
    assert already_restarted(template(**patched), "r9", SECRET) is False
    assert already_restarted(template(**{**patched, ROTATION_ID: "r9"}), "r2", SECRET) is True
    bare = restart_patch("r3", now)["spec"]["template"]["metadata"]["annotations"]
    assert bare[RESTARTED_FOR] is None, "merge patch null: a record never outlives the patch it described"

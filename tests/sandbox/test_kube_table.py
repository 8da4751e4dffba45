"""Server-side printing rules (rotator.sandbox.kube_table), as pure functions with a fixed clock.

kubectl against the emulator is in test_kube_kubectl.py; the same tables from kube-apiserver are
compared in tests/realkube/test_emulator_parity.py.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from rotator.sandbox.kube_table import (
    BadTableRequest,
    JsonPath,
    as_table,
    column_cell,
    columns_for,
    human_duration,
)

NOW = datetime.datetime(2026, 12, 1, 12, 0, 0, tzinfo=datetime.UTC)

M, H, D = 60, 3600, 86400


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (3 * M + 20, "3m20s"),
        (10 * M + 59, "10m"),
        (179 * M, "179m"),
        (3 * H, "3h"),
        (7 * H + 30 * M, "7h30m"),
        (8 * H + 30 * M, "8h"),
        (47 * H, "47h"),
        (3 * D, "3d"),
        (3 * D + 4 * H, "3d4h"),
        (8 * D + 4 * H, "8d"),
        (729 * D, "729d"),
        (2 * 365 * D, "2y"),
        (3 * 365 * D + 5 * D, "3y5d"),
        (9 * 365 * D + 5 * D, "9y"),
    ],
)
def test_ages_are_printed_as_kube_prints_them(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


POLICY: dict[str, Any] = {
    "apiVersion": "rotator.dev/v1alpha1",
    "kind": "RotationPolicy",
    "metadata": {"name": "orders", "namespace": "shop", "creationTimestamp": "2026-12-01T11:55:00Z"},
    "spec": {"tags": ["a", "b"], "limits": {"max": 3}},
    "status": {
        "conditions": [
            {"type": "Synced", "status": "False"},
            {"type": "Ready", "status": "True", "reason": "Rotated"},
        ],
        "count": 4,
        "ratio": 0.5,
        "flag": True,
    },
}


@pytest.mark.parametrize(
    ("path", "found"),
    [
        (".metadata.name", ["orders"]),
        ('.status.conditions[?(@.type=="Ready")].status', ["True"]),
        ('.status.conditions[?(@.type!="Ready")].type', ["Synced"]),
        (".status.conditions[*].type", ["Synced", "Ready"]),
        (".status.conditions[1].reason", ["Rotated"]),
        (".status.conditions[-1].reason", ["Rotated"]),
        (".status.conditions[5].reason", []),
        (".status['count']", [4]),
        (".status.missing.deeper", []),
        (".spec.tags", [["a", "b"]]),
        (".spec.tags.name", []),
        (".metadata.name[0]", []),
    ],
)
def test_json_path_finds_what_client_go_finds(path: str, found: list[Any]) -> None:
    assert JsonPath.parse(path).find(POLICY) == found


def test_json_path_filters_on_numbers() -> None:
    items = {"items": [{"n": 1, "v": "one"}, {"n": True, "v": "true"}, {"n": 2.0, "v": "two"}]}
    assert JsonPath.parse(".items[?(@.n==2)].v").find(items) == ["two"]
    assert JsonPath.parse(".items[?(@.n==1)].v").find(items) == ["one"]


def test_json_path_refuses_what_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="unrecognized column definition"):
        JsonPath.parse(".a..b")


@pytest.mark.parametrize(
    ("column_type", "value", "cell"),
    [
        ("string", "x", "x"),
        ("string", ["a", "<b>"], '["a","\\u003cb\\u003e"]'),
        ("string", {"max": 3}, '{"max":3}'),
        ("string", True, "true"),
        ("string", 3.0, "3"),
        ("string", 0.5, "0.5"),
        ("integer", 3.7, 3),
        ("integer", "3", None),
        ("integer", True, None),
        ("number", 4, 4.0),
        ("boolean", True, True),
        ("boolean", "true", None),
        ("date", "2026-12-01T11:00:00Z", "60m"),
        ("date", "yesterday", "<invalid>"),
        ("date", "2026-12-01T11:00:00", "<invalid>"),
        ("date", 5, None),
        ("string", None, None),
        ("unknown", "x", None),
    ],
)
def test_cells_are_typed_by_their_column(column_type: str, value: Any, cell: Any) -> None:
    assert column_cell(column_type, value, NOW) == cell


def test_a_crd_table_has_name_then_the_printer_columns() -> None:
    printer = [
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Tags", "type": "string", "jsonPath": ".spec.tags", "priority": 1, "description": "Tags."},
        {"name": "Missing", "type": "string", "jsonPath": ".status.nothing"},
        {"name": "Broken", "type": "string", "jsonPath": ".a..b"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    table = as_table(
        {
            "kind": "RotationPolicyList",
            "metadata": {"resourceVersion": "9", "continue": "c"},
            "items": [POLICY],
        },
        columns_for("rotator.dev", "RotationPolicy", printer),
        NOW,
    )
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name",
        "Ready",
        "Tags",
        "Missing",
        "Broken",
        "Age",
    ]
    assert table["columnDefinitions"][2]["priority"] == 1
    assert table["columnDefinitions"][2]["description"] == "Tags."
    assert table["columnDefinitions"][3]["description"].endswith(".status.nothing")
    assert table["metadata"] == {"resourceVersion": "9", "continue": "c"}
    (row,) = table["rows"]
    assert row["cells"] == ["orders", "True", '["a","b"]', None, None, "5m"]
    assert row["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": POLICY["metadata"],
    }


def test_a_crd_without_printer_columns_is_served_name_and_age() -> None:
    table = as_table(POLICY, columns_for("rotator.dev", "RotationPolicy", ()), NOW, "Object")
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Age"]
    assert table["rows"] == [{"cells": ["orders", "5m"], "object": POLICY}]


def test_include_object_none_and_bad_values() -> None:
    assert as_table(POLICY, columns_for("", "Secret", None), NOW, "None")["rows"][0]["object"] is None
    with pytest.raises(BadTableRequest, match="unrecognized includeObject value"):
        as_table(POLICY, columns_for("", "Secret", None), NOW, "Everything")


def test_a_status_is_not_a_table() -> None:
    status = {"kind": "Status", "code": 404}
    assert as_table(status, columns_for("", "Secret", None), NOW) is status


def _row(group: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    columns = columns_for(group, kind, None)
    table = as_table(obj, columns, NOW)
    return dict(zip([c["name"] for c in table["columnDefinitions"]], table["rows"][0]["cells"], strict=True))


META = {"name": "x", "creationTimestamp": "2026-12-01T09:00:00Z"}


def test_builtin_printers() -> None:
    assert _row("", "Secret", {"metadata": META, "type": "Opaque", "data": {"a": "", "b": ""}}) == {
        "Name": "x",
        "Type": "Opaque",
        "Data": 2,
        "Age": "3h",
    }
    assert _row("", "Namespace", {"metadata": META, "status": {"phase": "Active"}})["Status"] == "Active"
    assert _row("", "Event", {"metadata": META}) == {"Name": "x", "Age": "3h"}
    deployment = {
        "metadata": META,
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web", "tier": "a"}},
            "template": {"spec": {"containers": [{"name": "main", "image": "nginx:1"}, {"name": "side"}]}},
        },
        "status": {"readyReplicas": 2, "updatedReplicas": 3},
    }
    assert _row("apps", "Deployment", deployment) == {
        "Name": "x",
        "Ready": "2/3",
        "Up-to-date": 3,
        "Available": 0,
        "Age": "3h",
        "Containers": "main,side",
        "Images": "nginx:1,",
        "Selector": "app=web,tier=a",
    }
    assert _row("apps", "StatefulSet", {"metadata": META, "spec": {}})["Ready"] == "0/1"
    daemonset = _row("apps", "DaemonSet", {"metadata": META, "status": {"numberReady": 2}})
    assert (daemonset["Ready"], daemonset["Node Selector"], daemonset["Selector"]) == (2, "<none>", "<none>")


def test_pod_printer() -> None:
    pod: dict[str, Any] = {
        "metadata": META,
        "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "node-1"},
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.1",
            "containerStatuses": [
                {"ready": True, "restartCount": 1, "state": {"running": {}}},
                {"ready": False, "restartCount": 2, "state": {"running": {}}},
            ],
        },
    }
    row = _row("", "Pod", pod)
    assert (row["Ready"], row["Status"], row["Restarts"], row["IP"], row["Node"]) == (
        "1/2",
        "Running",
        "3",
        "10.0.0.1",
        "node-1",
    )
    pod["status"]["containerStatuses"][1]["state"] = {"waiting": {"reason": "CrashLoopBackOff"}}
    assert _row("", "Pod", pod)["Status"] == "CrashLoopBackOff"
    pod["metadata"] = {**META, "deletionTimestamp": "2026-12-01T11:00:00Z"}
    assert _row("", "Pod", pod)["Status"] == "Terminating"
    assert _row("", "Pod", {"metadata": {"name": "p"}})["Age"] == "<unknown>"

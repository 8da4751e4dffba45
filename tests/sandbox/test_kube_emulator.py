"""The Kubernetes API emulator keeps the promises of kube-apiserver that clients rely on.

Each test names one semantic (DESIGN §5) and checks it over HTTP, as a client sees it.
"""

from __future__ import annotations

import base64
import collections
import http.client
import re
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kmock
import kubernetes
import pytest
import yaml

from rotator.sandbox import kube_store
from rotator.sandbox.kube_emulator import Fault
from rotator.sandbox.kube_server import KubeServer
from rotator.sandbox.processes import free_port
from tests.fixtures.kube import KubeHTTP

SECRETS = "/api/v1/namespaces/shop/secrets"
CONFIGMAPS = "/api/v1/namespaces/shop/configmaps"
DEPLOYMENTS = "/apis/apps/v1/namespaces/shop/deployments"
WIDGETS = "/apis/example.dev/v1/namespaces/shop/widgets"
REPO = Path(__file__).resolve().parents[2]


def deployment(name: str = "web", image: str = "nginx:1") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
        },
    }


WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.dev"},
    "spec": {
        "group": "example.dev",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


def create(kube_http: KubeHTTP, path: str, body: dict[str, Any]) -> dict[str, Any]:
    status, obj = kube_http.request("POST", path, body)
    assert status == 201, obj
    assert isinstance(obj, dict)
    return obj


def install_widgets(kube_http: KubeHTTP) -> dict[str, Any]:
    return create(kube_http, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", WIDGET_CRD)


# ------------------------------------------------------------------------- identity & versions


def test_resource_version_is_global_and_monotonic(kube_http: KubeHTTP) -> None:
    first = create(kube_http, SECRETS, {"metadata": {"name": "a"}})
    second = create(kube_http, CONFIGMAPS, {"metadata": {"name": "b"}})
    _, updated = kube_http.request(
        "PATCH",
        f"{SECRETS}/a",
        {"metadata": {"labels": {"x": "1"}}},
        content_type="application/merge-patch+json",
    )
    versions = [int(o["metadata"]["resourceVersion"]) for o in (first, second, updated)]
    assert versions == sorted(versions)
    assert len(set(versions)) == 3


def test_put_with_stale_resource_version_conflicts(kube_http: KubeHTTP) -> None:
    stale = create(kube_http, SECRETS, {"metadata": {"name": "a"}, "data": {}})
    fresh = dict(stale, data={"k": "dg=="})
    assert kube_http.request("PUT", f"{SECRETS}/a", fresh)[0] == 200
    status, body = kube_http.request("PUT", f"{SECRETS}/a", dict(stale, data={"k": "eA=="}))
    assert status == 409
    assert body["reason"] == "Conflict"
    assert "the object has been modified" in body["message"]


def test_patch_with_stale_resource_version_conflicts(kube_http: KubeHTTP) -> None:
    stale = create(kube_http, SECRETS, {"metadata": {"name": "a"}})
    kube_http.request(
        "PATCH", f"{SECRETS}/a", {"data": {"k": "dg=="}}, content_type="application/merge-patch+json"
    )
    patch = {"metadata": {"resourceVersion": stale["metadata"]["resourceVersion"]}, "data": {"k": "eA=="}}
    status, body = kube_http.request(
        "PATCH", f"{SECRETS}/a", patch, content_type="application/merge-patch+json"
    )
    assert (status, body["reason"]) == (409, "Conflict")


def test_uid_and_creation_timestamp_are_assigned(kube_http: KubeHTTP) -> None:
    obj = create(kube_http, SECRETS, {"metadata": {"name": "a", "uid": "forged"}})
    assert re.fullmatch(r"[0-9a-f-]{36}", obj["metadata"]["uid"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", obj["metadata"]["creationTimestamp"])


def test_generation_moves_only_with_the_spec(kube_http: KubeHTTP) -> None:
    path = f"{DEPLOYMENTS}/web"
    assert create(kube_http, DEPLOYMENTS, deployment())["metadata"]["generation"] == 1
    merge = "application/merge-patch+json"
    _, obj = kube_http.request("PATCH", path, {"metadata": {"annotations": {"a": "b"}}}, content_type=merge)
    assert obj["metadata"]["generation"] == 1
    _, obj = kube_http.request("PATCH", f"{path}/status", {"status": {"replicas": 7}}, content_type=merge)
    assert obj["metadata"]["generation"] == 1
    _, obj = kube_http.request("PATCH", path, {"spec": {"replicas": 3}}, content_type=merge)
    assert obj["metadata"]["generation"] == 2


def test_namespace_is_taken_from_the_url(kube_http: KubeHTTP) -> None:
    obj = create(kube_http, SECRETS, {"metadata": {"name": "a", "namespace": "elsewhere"}})
    assert obj["metadata"]["namespace"] == "shop"
    assert kube_http.request("GET", f"{SECRETS}/a")[0] == 200


def test_generate_name_makes_a_unique_name(kube_http: KubeHTTP) -> None:
    names = {
        create(kube_http, SECRETS, {"metadata": {"generateName": "tok-"}})["metadata"]["name"]
        for _ in range(3)
    }
    assert len(names) == 3
    assert all(re.fullmatch(r"tok-[a-z0-9]{5}", name) for name in names)


def test_a_generated_name_that_is_taken_is_drawn_again(
    kube_http: KubeHTTP, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kube-apiserver's RetryGenerateName (1.32+): a collision is not a 409 while draws remain."""
    draws = iter("bbbbb" + "bbbbb" + "ccccc")  # the second object first draws the taken name
    monkeypatch.setattr(kube_store, "secrets", SimpleNamespace(choice=lambda _: next(draws)))
    first = create(kube_http, SECRETS, {"metadata": {"generateName": "ev-"}})["metadata"]["name"]
    second = create(kube_http, SECRETS, {"metadata": {"generateName": "ev-"}})["metadata"]["name"]
    assert (first, second) == ("ev-bbbbb", "ev-ccccc")


def test_create_answers_201(kube_http: KubeHTTP) -> None:
    status, obj = kube_http.request("POST", SECRETS, {"metadata": {"name": "a"}})
    assert status == 201
    assert (obj["kind"], obj["apiVersion"]) == ("Secret", "v1")


def test_duplicate_create_answers_409_already_exists(kube_http: KubeHTTP) -> None:
    create(kube_http, SECRETS, {"metadata": {"name": "a"}})
    status, body = kube_http.request("POST", SECRETS, {"metadata": {"name": "a"}})
    assert (status, body["reason"], body["message"]) == (409, "AlreadyExists", 'secrets "a" already exists')


def test_secret_string_data_is_stored_as_base64_data(kube_http: KubeHTTP) -> None:
    obj = create(kube_http, SECRETS, {"metadata": {"name": "a"}, "stringData": {"password": "hunter2"}})
    assert "stringData" not in obj
    assert base64.b64decode(obj["data"]["password"]) == b"hunter2"


# --------------------------------------------------------------------------------- patches


def test_json_patch_applies_operations(kube_http: KubeHTTP) -> None:
    create(
        kube_http, SECRETS, {"metadata": {"name": "a", "annotations": {"old": "1"}}, "data": {"k": "dg=="}}
    )
    ops = [
        {"op": "add", "path": "/metadata/annotations/rotator.dev~1version", "value": "2"},
        {"op": "remove", "path": "/metadata/annotations/old"},
        {"op": "replace", "path": "/data/k", "value": "eA=="},
        {"op": "test", "path": "/data/k", "value": "eA=="},
    ]
    status, obj = kube_http.request("PATCH", f"{SECRETS}/a", ops, content_type="application/json-patch+json")
    assert status == 200, obj
    assert obj["metadata"]["annotations"] == {"rotator.dev/version": "2"}
    assert obj["data"] == {"k": "eA=="}


def test_json_patch_failed_test_answers_422(kube_http: KubeHTTP) -> None:
    before = create(kube_http, SECRETS, {"metadata": {"name": "a"}, "data": {"k": "dg=="}})
    ops = [
        {"op": "test", "path": "/data/k", "value": "nope"},
        {"op": "replace", "path": "/data/k", "value": "eA=="},
    ]
    status, body = kube_http.request("PATCH", f"{SECRETS}/a", ops, content_type="application/json-patch+json")
    assert (status, body["reason"]) == (422, "Invalid")
    assert kube_http.request("GET", f"{SECRETS}/a")[1] == before


def test_merge_patch_merges_and_deletes_with_null(kube_http: KubeHTTP) -> None:
    create(
        kube_http, SECRETS, {"metadata": {"name": "a", "labels": {"a": "1", "b": "2"}}, "data": {"x": "eA=="}}
    )
    patch = {"metadata": {"labels": {"a": None, "c": "3"}}, "data": {"y": "eQ=="}}
    _, obj = kube_http.request("PATCH", f"{SECRETS}/a", patch, content_type="application/merge-patch+json")
    assert obj["metadata"]["labels"] == {"b": "2", "c": "3"}
    assert obj["data"] == {"x": "eA==", "y": "eQ=="}


def test_strategic_merge_patch_merges_maps_and_named_lists(kube_http: KubeHTTP) -> None:
    body = deployment()
    body["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "envoy"})
    create(kube_http, DEPLOYMENTS, body)
    patch = {
        "metadata": {"annotations": {"a": "1"}},
        "spec": {
            "template": {
                "metadata": {"annotations": {"rotator.dev/restarted-at": "now"}},
                "spec": {
                    "$setElementOrder/containers": [{"name": "main"}, {"name": "sidecar"}],
                    "containers": [{"name": "main", "image": "nginx:2"}],
                },
            }
        },
    }
    status, obj = kube_http.request(
        "PATCH", f"{DEPLOYMENTS}/web", patch, content_type="application/strategic-merge-patch+json"
    )
    assert status == 200, obj
    template = obj["spec"]["template"]
    assert template["metadata"] == {
        "labels": {"app": "web"},
        "annotations": {"rotator.dev/restarted-at": "now"},
    }
    assert template["spec"]["containers"] == [
        {"name": "main", "image": "nginx:2"},
        {"name": "sidecar", "image": "envoy"},
    ]
    assert "$setElementOrder/containers" not in template["spec"]


def test_put_replaces_the_whole_object(kube_http: KubeHTTP) -> None:
    obj = create(kube_http, SECRETS, {"metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "dg=="}})
    replacement = {
        "metadata": {"name": "a", "resourceVersion": obj["metadata"]["resourceVersion"]},
        "data": {},
    }
    status, new = kube_http.request("PUT", f"{SECRETS}/a", replacement)
    assert status == 200
    assert "labels" not in new["metadata"]
    assert new["data"] == {}
    assert new["metadata"]["uid"] == obj["metadata"]["uid"]


# ----------------------------------------------------------------------- status subresource


def test_status_subresource_writes_change_only_status(kube_http: KubeHTTP) -> None:
    install_widgets(kube_http)
    create(kube_http, WIDGETS, {"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "w"}})
    patch = {"spec": {"size": 9}, "status": {"phase": "Ready"}}
    _, obj = kube_http.request(
        "PATCH", f"{WIDGETS}/w/status", patch, content_type="application/merge-patch+json"
    )
    assert obj["status"] == {"phase": "Ready"}
    assert "spec" not in obj


@pytest.mark.parametrize("kind", ["Widget", "Deployment", "StatefulSet", "DaemonSet"])
def test_main_resource_writes_ignore_status(kube_http: KubeHTTP, kind: str) -> None:
    if kind == "Widget":
        install_widgets(kube_http)
        path, body = WIDGETS, {"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "w"}}
    else:
        path = f"/apis/apps/v1/namespaces/shop/{kind.lower()}s"
        body = dict(deployment("w"), kind=kind)
    created = create(kube_http, path, {**body, "status": {"forged": True}})
    assert "forged" not in (created.get("status") or {})
    patch = {"metadata": {"labels": {"x": "1"}}, "status": {"forged": True}}
    _, obj = kube_http.request("PATCH", f"{path}/w", patch, content_type="application/merge-patch+json")
    assert obj["metadata"]["labels"] == {"x": "1"}
    assert "forged" not in (obj.get("status") or {})


def test_scale_subresource_reads_and_writes_replicas(kube_http: KubeHTTP) -> None:
    create(kube_http, DEPLOYMENTS, deployment())
    status, scale = kube_http.request("GET", f"{DEPLOYMENTS}/web/scale")
    assert (status, scale["kind"], scale["spec"]["replicas"]) == (200, "Scale", 1)
    kube_http.request(
        "PATCH",
        f"{DEPLOYMENTS}/web/scale",
        {"spec": {"replicas": 4}},
        content_type="application/merge-patch+json",
    )
    assert kube_http.request("GET", f"{DEPLOYMENTS}/web")[1]["spec"]["replicas"] == 4


# --------------------------------------------------------------------------- lists & watches


def test_label_selectors(kube_http: KubeHTTP) -> None:
    for name, labels in [("a", {"app": "x", "tier": "db"}), ("b", {"app": "y"}), ("c", {})]:
        create(kube_http, SECRETS, {"metadata": {"name": name, "labels": labels}})

    def names(selector: str) -> list[str]:
        status, body = kube_http.request("GET", SECRETS, params={"labelSelector": selector})
        assert status == 200, body
        return [item["metadata"]["name"] for item in body["items"]]

    assert names("app=x") == ["a"]
    assert names("app==x") == ["a"]
    assert names("app!=x") == ["b", "c"]
    assert names("app in (x, y)") == ["a", "b"]
    assert names("app notin (x)") == ["b", "c"]
    assert names("tier") == ["a"]
    assert names("!tier") == ["b", "c"]
    assert names("app in (x,y),!tier") == ["b"]


def test_field_selectors(kube_http: KubeHTTP) -> None:
    create(kube_http, SECRETS, {"metadata": {"name": "a"}})
    create(kube_http, SECRETS, {"metadata": {"name": "b"}})
    create(kube_http, "/api/v1/namespaces/other/secrets", {"metadata": {"name": "a"}})

    def names(path: str, selector: str) -> list[tuple[str, str]]:
        body = kube_http.request("GET", path, params={"fieldSelector": selector})[1]
        return [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in body["items"]]

    assert names(SECRETS, "metadata.name=a") == [("shop", "a")]
    assert names(SECRETS, "metadata.name!=a") == [("shop", "b")]
    assert names("/api/v1/secrets", "metadata.namespace=other") == [("other", "a")]
    assert names("/api/v1/secrets", "metadata.name=a,metadata.namespace!=other") == [("shop", "a")]


def test_list_carries_kind_api_version_and_resource_version(kube_http: KubeHTTP) -> None:
    obj = create(kube_http, DEPLOYMENTS, deployment())
    status, body = kube_http.request("GET", DEPLOYMENTS)
    assert status == 200
    assert (body["kind"], body["apiVersion"]) == ("DeploymentList", "apps/v1")
    assert int(body["metadata"]["resourceVersion"]) >= int(obj["metadata"]["resourceVersion"])


def test_watch_from_resource_version_sends_only_later_events(kube_http: KubeHTTP) -> None:
    create(kube_http, SECRETS, {"metadata": {"name": "before"}})
    list_rv = kube_http.request("GET", SECRETS)[1]["metadata"]["resourceVersion"]
    create(kube_http, SECRETS, {"metadata": {"name": "after"}})
    kube_http.request("DELETE", f"{SECRETS}/before")
    events = kube_http.watch(SECRETS, resourceVersion=list_rv, timeoutSeconds="1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "after"),
        ("DELETED", "before"),
    ]


def test_a_label_selected_watch_sees_objects_leave_and_enter_its_selector(kube_http: KubeHTTP) -> None:
    """kube-apiserver's rule: a change that takes an object out of a watch's selector is DELETED
    on that watch (the object shown as it was, still matching), one that brings it in is ADDED."""
    create(kube_http, SECRETS, {"metadata": {"name": "a", "labels": {"watched": "yes"}}})
    list_rv = kube_http.request("GET", SECRETS)[1]["metadata"]["resourceVersion"]
    for labels in ({"watched": "yes", "other": "1"}, {"watched": None}, {"other": "2"}, {"watched": "yes"}):
        patch = {"metadata": {"labels": labels}}
        status, _ = kube_http.request(
            "PATCH", f"{SECRETS}/a", patch, content_type="application/merge-patch+json"
        )
        assert status == 200
    events = kube_http.watch(
        SECRETS, resourceVersion=list_rv, labelSelector="watched=yes", timeoutSeconds="1"
    )
    seen = [(e["type"], e["object"]["metadata"].get("labels", {}).get("watched")) for e in events]
    assert seen == [("MODIFIED", "yes"), ("DELETED", "yes"), ("ADDED", "yes")]


def test_watch_without_resource_version_starts_with_current_objects(kube_http: KubeHTTP) -> None:
    create(kube_http, SECRETS, {"metadata": {"name": "a"}})
    events = kube_http.watch(SECRETS, timeoutSeconds="1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "a")]


def test_watch_honours_timeout_seconds(kube_http: KubeHTTP) -> None:
    started = time.monotonic()
    assert kube_http.watch(SECRETS, resourceVersion="1", timeoutSeconds="1") == []
    assert 0.9 <= time.monotonic() - started < 3


def test_watch_from_a_compacted_resource_version_gets_an_expired_event_in_the_stream(
    kube_server: KubeServer, kube_http: KubeHTTP
) -> None:
    """As kube-apiserver's watch cache: 200, then one ERROR event with a 410 Status, then EOF."""
    kube_server.call(lambda emulator: setattr(emulator.store, "_log", collections.deque(maxlen=2)))
    for i in range(4):
        create(kube_http, SECRETS, {"metadata": {"name": f"s{i}"}})
    floor = kube_server.call(lambda emulator: emulator.store._log_floor)
    events = kube_http.watch(SECRETS, resourceVersion="1", timeoutSeconds="5")
    assert events == [
        {
            "type": "ERROR",
            "object": {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": f"too old resource version: 1 ({floor})",
                "reason": "Expired",
                "code": 410,
            },
        }
    ]
    assert kube_server.call(lambda emulator: emulator.expired_watches) == 1
    assert kube_server.call(lambda emulator: emulator.store.open_watches) == 0


def test_compaction_expires_every_older_resource_version(
    kube_server: KubeServer, kube_http: KubeHTTP
) -> None:
    create(kube_http, SECRETS, {"metadata": {"name": "a"}})
    before = kube_http.request("GET", SECRETS)[1]["metadata"]["resourceVersion"]
    create(kube_http, SECRETS, {"metadata": {"name": "b"}})
    floor = kube_server.compact()
    assert [e["type"] for e in kube_http.watch(SECRETS, resourceVersion=before, timeoutSeconds="1")] == [
        "ERROR"
    ]
    # The latest resourceVersion is still a valid starting point: nothing to replay, nothing lost.
    assert kube_http.watch(SECRETS, resourceVersion=str(floor), timeoutSeconds="0.3") == []


def test_watch_sends_bookmarks_when_allowed(kube_server: KubeServer, kube_http: KubeHTTP) -> None:
    kube_server.call(lambda emulator: setattr(emulator, "bookmark_interval", 0.2))
    created = create(kube_http, SECRETS, {"metadata": {"name": "a"}})
    create(kube_http, CONFIGMAPS, {"metadata": {"name": "elsewhere"}})  # moves the global version
    latest = kube_server.call(lambda emulator: emulator.store.resource_version)
    events = kube_http.watch(SECRETS, resourceVersion="1", timeoutSeconds="1", allowWatchBookmarks="true")
    assert [e["object"]["metadata"]["name"] for e in events if e["type"] == "ADDED"] == ["a"]
    assert events[0]["object"]["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    bookmarks = events[1:]
    assert 3 <= len(bookmarks) <= 7, events
    assert {e["type"] for e in bookmarks} == {"BOOKMARK"}
    assert bookmarks[0]["object"] == {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": str(latest)},
    }


def test_a_bookmark_ends_the_timeout_window(kube_http: KubeHTTP) -> None:
    """With the default interval (5 s) a 1 s watch still ends on a bookmark: the client resumes
    from the newest resourceVersion, never from one compaction may already have dropped."""
    create(kube_http, SECRETS, {"metadata": {"name": "a"}})
    events = kube_http.watch(SECRETS, timeoutSeconds="1", allowWatchBookmarks="true")
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    assert int(events[1]["object"]["metadata"]["resourceVersion"]) >= int(
        events[0]["object"]["metadata"]["resourceVersion"]
    )


def test_no_bookmarks_unless_asked(kube_server: KubeServer, kube_http: KubeHTTP) -> None:
    kube_server.call(lambda emulator: setattr(emulator, "bookmark_interval", 0.1))
    assert kube_http.watch(SECRETS, timeoutSeconds="0.5") == []


def test_dropped_watches_end_their_streams(kube_server: KubeServer, kube_http: KubeHTTP) -> None:
    result: list[list[dict[str, Any]]] = []
    reader = threading.Thread(target=lambda: result.append(kube_http.watch(SECRETS, timeoutSeconds="8")))
    reader.start()
    wait_for = time.monotonic() + 5
    while kube_server.call(lambda emulator: emulator.store.open_watches) == 0 and time.monotonic() < wait_for:
        time.sleep(0.02)
    started = time.monotonic()
    assert kube_server.drop_watches() == 1
    reader.join(5)
    assert result == [[]]
    assert time.monotonic() - started < 2


# ------------------------------------------------------------------------------- discovery


@pytest.mark.parametrize(
    ("path", "group_version", "expected"),
    [
        (
            "/api/v1",
            "v1",
            {"namespaces", "secrets", "configmaps", "events", "pods", "serviceaccounts", "services"},
        ),
        (
            "/apis/apps/v1",
            "apps/v1",
            {
                "deployments",
                "statefulsets",
                "daemonsets",
                "deployments/status",
                "deployments/scale",
                "statefulsets/status",
                "statefulsets/scale",
            },
        ),
        ("/apis/apiextensions.k8s.io/v1", "apiextensions.k8s.io/v1", {"customresourcedefinitions"}),
        ("/apis/events.k8s.io/v1", "events.k8s.io/v1", {"events"}),
        ("/apis/coordination.k8s.io/v1", "coordination.k8s.io/v1", {"leases"}),
        ("/apis/authentication.k8s.io/v1", "authentication.k8s.io/v1", {"tokenreviews"}),
    ],
)
def test_discovery(kube_http: KubeHTTP, path: str, group_version: str, expected: set[str]) -> None:
    status, body = kube_http.request("GET", path)
    assert status == 200
    assert (body["kind"], body["groupVersion"]) == ("APIResourceList", group_version)
    assert expected <= {r["name"] for r in body["resources"]}


def test_group_discovery_lists_the_groups(kube_http: KubeHTTP) -> None:
    assert kube_http.request("GET", "/api")[1]["versions"] == ["v1"]
    groups = {g["name"] for g in kube_http.request("GET", "/apis")[1]["groups"]}
    assert {
        "apps",
        "apiextensions.k8s.io",
        "events.k8s.io",
        "coordination.k8s.io",
        "authentication.k8s.io",
    } <= groups
    status, group = kube_http.request("GET", "/apis/apps")
    assert (status, group["kind"], group["preferredVersion"]["version"]) == (200, "APIGroup", "v1")


def test_creating_a_crd_serves_its_resource_and_establishes_it(kube_http: KubeHTTP) -> None:
    crd = install_widgets(kube_http)
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions == {"Established": "True", "NamesAccepted": "True"}
    resources = kube_http.request("GET", "/apis/example.dev/v1")[1]["resources"]
    widgets = next(r for r in resources if r["name"] == "widgets")
    assert (widgets["kind"], widgets["singularName"], widgets["shortNames"], widgets["namespaced"]) == (
        "Widget",
        "widget",
        ["wd"],
        True,
    )
    assert "widgets/status" in {r["name"] for r in resources}
    assert "example.dev" in {g["name"] for g in kube_http.request("GET", "/apis")[1]["groups"]}
    create(kube_http, WIDGETS, {"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "w"}})


def test_deleting_a_crd_removes_its_resource(kube_http: KubeHTTP) -> None:
    install_widgets(kube_http)
    create(kube_http, WIDGETS, {"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "w"}})
    kube_http.request("DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.dev")
    assert kube_http.request("GET", WIDGETS)[0] == 404


# ------------------------------------------------------------------------------ token review


def test_token_review_authenticates_only_registered_tokens(
    kube_server: KubeServer, kube_http: KubeHTTP
) -> None:
    kube_server.register_token("good-token", "system:serviceaccount:shop:orders")
    path = "/apis/authentication.k8s.io/v1/tokenreviews"

    def review(token: str) -> dict[str, Any]:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        status, answer = kube_http.request("POST", path, body)
        assert status == 201
        return dict(answer["status"])

    good = review("good-token")
    assert good["authenticated"] is True
    assert good["user"]["username"] == "system:serviceaccount:shop:orders"
    assert review("bad-token")["authenticated"] is False


# -------------------------------------------------------------------------------- deletion


def test_delete_returns_the_object(kube_http: KubeHTTP) -> None:
    create(kube_http, SECRETS, {"metadata": {"name": "a"}})
    status, body = kube_http.request("DELETE", f"{SECRETS}/a")
    assert (status, body["metadata"]["name"]) == (200, "a")
    assert kube_http.request("GET", f"{SECRETS}/a")[0] == 404
    assert kube_http.request("DELETE", f"{SECRETS}/a")[1]["reason"] == "NotFound"


def test_finalizers_hold_deletion_until_removed(kube_http: KubeHTTP) -> None:
    create(kube_http, SECRETS, {"metadata": {"name": "a", "finalizers": ["rotator.dev/cleanup"]}})
    status, marked = kube_http.request("DELETE", f"{SECRETS}/a")
    assert status == 200
    assert marked["metadata"]["deletionTimestamp"]
    assert kube_http.request("GET", f"{SECRETS}/a")[0] == 200
    patch = {"metadata": {"finalizers": None}}
    kube_http.request("PATCH", f"{SECRETS}/a", patch, content_type="application/merge-patch+json")
    assert kube_http.request("GET", f"{SECRETS}/a")[0] == 404


def test_deleting_a_namespace_deletes_its_objects(kube_http: KubeHTTP) -> None:
    create(kube_http, "/api/v1/namespaces", {"metadata": {"name": "shop"}})
    create(kube_http, SECRETS, {"metadata": {"name": "a"}})
    assert kube_http.request("DELETE", "/api/v1/namespaces/shop")[0] == 200
    assert kube_http.request("GET", "/api/v1/namespaces/shop")[0] == 404
    assert kube_http.request("GET", f"{SECRETS}/a")[0] == 404


def test_owner_references_are_garbage_collected(kube_http: KubeHTTP) -> None:
    owner = create(kube_http, CONFIGMAPS, {"metadata": {"name": "owner"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    create(kube_http, SECRETS, {"metadata": {"name": "owned", "ownerReferences": [ref]}})
    kube_http.request("DELETE", f"{CONFIGMAPS}/owner")
    assert kube_http.request("GET", f"{SECRETS}/owned")[0] == 404


# ---------------------------------------------------------------------- schema validation


@dataclass(frozen=True)
class StubError:
    field: str
    type: str
    detail: str


def test_custom_resources_are_validated_with_a_stub(
    kube_http: KubeHTTP, monkeypatch: pytest.MonkeyPatch
) -> None:
    def validate(schema: Any, obj: Any) -> list[StubError]:
        if "size" not in (obj.get("spec") or {}):
            return [StubError("spec.size", "FieldValueRequired", "")]
        return []

    monkeypatch.setattr(kube_store, "_load_schema_module", lambda: SimpleNamespace(validate=validate))
    install_widgets(kube_http)
    body = {"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}}
    status, answer = kube_http.request("POST", WIDGETS, body)
    assert (status, answer["reason"]) == (422, "Invalid")
    assert answer["message"] == 'Widget.example.dev "w" is invalid: spec.size: Required value'
    assert answer["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.size"}
    ]
    assert create(kube_http, WIDGETS, {**body, "spec": {"size": 1}})["spec"] == {"size": 1}


def rotation_policy(**spec_overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "secret": {"name": "orders-db-credentials", "key": "password"},
        "credential": {"password": {"length": 32}},
        "storeRef": {"kind": "RotationStore", "name": "vault"},
        "path": "orders-db",
        "schedule": {"interval": "720h"},
    }
    spec.update(spec_overrides)
    return {
        "apiVersion": "rotator.dev/v1alpha1",
        "kind": "RotationPolicy",
        "metadata": {"name": "orders-db"},
        "spec": spec,
    }


def test_rotation_policy_crd_validation_answers_422(kube_http: KubeHTTP) -> None:
    crd = yaml.safe_load((REPO / "crds" / "rotationpolicies.rotator.dev.yaml").read_text())
    create(kube_http, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    path = "/apis/rotator.dev/v1alpha1/namespaces/shop/rotationpolicies"
    valid = rotation_policy()
    status, stored = kube_http.request("POST", path, valid)
    assert status == 201, stored
    invalid = rotation_policy(storeRef={"kind": "RotationStore"})
    invalid["metadata"]["name"] = "broken"
    status, answer = kube_http.request("POST", path, invalid)
    assert (status, answer["reason"], answer["code"]) == (422, "Invalid", 422)
    assert answer["message"].startswith('RotationPolicy.rotator.dev "broken" is invalid: ')
    assert any(cause["field"] == "spec.storeRef.name" for cause in answer["details"]["causes"])
    status, answer = kube_http.request(
        "PATCH",
        f"{path}/orders-db",
        {"spec": {"storeRef": None}},
        content_type="application/merge-patch+json",
    )
    assert status == 422, answer
    assert any(cause["field"] == "spec.storeRef" for cause in answer["details"]["causes"])
    status, answer = kube_http.request(
        "PATCH",
        f"{path}/orders-db",
        {"spec": {"path": "../billing"}},
        content_type="application/merge-patch+json",
    )
    assert status == 422, answer
    assert answer["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: \"string\": must not contain '.' or '..' segments",
            "field": "spec.path",
        }
    ]


@pytest.mark.parametrize(
    ("spec_change", "field", "detail"),
    [
        (
            {"credential": {"password": {"length": 2**63}}},
            "spec.credential.password.length",
            'spec.credential.password.length in body must be of type integer: "number"',
        ),
        (
            {"restart": {"maxConcurrent": -(2**63) - 1}},
            "spec.restart.maxConcurrent",
            'spec.restart.maxConcurrent in body must be of type integer: "number"',
        ),
        (
            {"credential": {"password": {"length": 2**63 - 1}}},
            "spec.credential.password.length",
            "spec.credential.password.length in body should be less than or equal to 256",
        ),
    ],
)
def test_integers_beyond_int64_answer_422(
    kube_http: KubeHTTP, spec_change: dict[str, Any], field: str, detail: str
) -> None:
    """JSON numbers decode as kube-apiserver decodes them: int64 when they fit, else float64,
    which a ``type: integer`` field refuses (the in-range value meets the maximum instead)."""
    crd = yaml.safe_load((REPO / "crds" / "rotationpolicies.rotator.dev.yaml").read_text())
    create(kube_http, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    path = "/apis/rotator.dev/v1alpha1/namespaces/shop/rotationpolicies"
    status, answer = kube_http.request("POST", path, rotation_policy(**spec_change))
    assert (status, answer["reason"]) == (422, "Invalid"), answer
    causes = [(c["field"], c["message"]) for c in answer["details"]["causes"]]
    assert any(f == field and message.endswith(detail) for f, message in causes), causes


def test_integers_beyond_int64_in_the_status_answer_422(kube_http: KubeHTTP) -> None:
    crd = yaml.safe_load((REPO / "crds" / "rotationpolicies.rotator.dev.yaml").read_text())
    create(kube_http, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    path = "/apis/rotator.dev/v1alpha1/namespaces/shop/rotationpolicies"
    create(kube_http, path, rotation_policy())
    status, answer = kube_http.request(
        "PATCH",
        f"{path}/orders-db/status",
        {"status": {"observedGeneration": 2**64}},
        content_type="application/merge-patch+json",
    )
    assert (status, answer["reason"]) == (422, "Invalid"), answer
    assert answer["details"]["causes"][0]["field"] == "status.observedGeneration"


def test_an_integer_beyond_int64_without_a_schema_is_kept_as_a_float(kube_http: KubeHTTP) -> None:
    install_widgets(kube_http)
    body = {"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "w"}}
    stored = create(kube_http, WIDGETS, {**body, "spec": {"big": 2**64, "fits": 2**63 - 1}})
    assert stored["spec"] == {"big": float(2**64), "fits": 2**63 - 1}


# --------------------------------------------------------------------- faults & bookkeeping


def test_injected_fault_fails_matching_requests_then_heals(
    kube_server: KubeServer, kube_http: KubeHTTP
) -> None:
    kube_server.add_fault(Fault(path=re.compile(r"/secrets$"), method="POST", code=500, times=1))
    status, body = kube_http.request("POST", SECRETS, {"metadata": {"name": "a"}})
    assert (status, body["reason"]) == (500, "InternalError")
    assert kube_http.request("POST", SECRETS, {"metadata": {"name": "a"}})[0] == 201


def test_kubernetes_client_round_trip(kube_api: kubernetes.client.ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(kube_api)
    core.create_namespaced_secret("shop", {"metadata": {"name": "a"}, "stringData": {"k": "v"}})
    secret = core.read_namespaced_secret("a", "shop")
    assert secret.data == {"k": "dg=="}
    with pytest.raises(kubernetes.client.ApiException) as raised:
        core.read_namespaced_secret("missing", "shop")
    assert raised.value.status == 404


def test_request_history_is_bounded(kube_server: KubeServer, kube_http: KubeHTTP) -> None:
    limit = kube_server.call(lambda emulator: emulator.history_limit)
    conn = http.client.HTTPConnection(kube_http.host, kube_http.port, timeout=10)  # keep-alive: fast

    def get_many(count: int) -> None:
        for _ in range(count):
            conn.request("GET", SECRETS)
            assert conn.getresponse().read()

    tracemalloc.start()
    try:
        get_many(500)
        baseline, _ = tracemalloc.get_traced_memory()
        get_many(1500)
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        conn.close()
    history = kube_server.call(lambda emulator: len(emulator.history))
    assert kube_server.call(lambda emulator: emulator.request_count) == 2000
    assert history <= 2 * limit
    assert current - baseline < 2_000_000, f"memory grew by {current - baseline} bytes over 1500 requests"


def test_standalone_runner_serves_until_sigterm(tmp_path: Path) -> None:
    port = free_port()
    kubeconfig = tmp_path / "kubeconfig"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rotator.sandbox.kube_server",
            "--port",
            str(port),
            "--kubeconfig",
            str(kubeconfig),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not kubeconfig.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        config = yaml.safe_load(kubeconfig.read_text())
        assert config["clusters"][0]["cluster"]["server"] == f"http://127.0.0.1:{port}"
        assert KubeHTTP(f"http://127.0.0.1:{port}").request("GET", "/version")[0] == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert f"listening on http://127.0.0.1:{port}" in out


def test_dry_run_validates_without_storing(kube_http: KubeHTTP) -> None:
    status, obj = kube_http.request("POST", SECRETS, {"metadata": {"name": "a"}}, params={"dryRun": "All"})
    assert (status, obj["metadata"]["name"]) == (201, "a")
    assert kube_http.request("GET", f"{SECRETS}/a")[0] == 404
    create(kube_http, SECRETS, {"metadata": {"name": "a"}})
    patch = {"metadata": {"labels": {"x": "1"}}}
    status, obj = kube_http.request(
        "PATCH", f"{SECRETS}/a", patch, content_type="application/merge-patch+json", params={"dryRun": "All"}
    )
    assert (status, obj["metadata"]["labels"]) == (200, {"x": "1"})
    assert "labels" not in kube_http.request("GET", f"{SECRETS}/a")[1]["metadata"]
    assert kube_http.request("DELETE", f"{SECRETS}/a", params={"dryRun": "All"})[0] == 200
    assert kube_http.request("GET", f"{SECRETS}/a")[0] == 200


def test_kubernetes_client_watch_resumes_from_a_list(kube_api: kubernetes.client.ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(kube_api)
    core.create_namespaced_secret("shop", {"metadata": {"name": "old"}})
    listing = core.list_namespaced_secret("shop")
    core.create_namespaced_secret("shop", {"metadata": {"name": "new"}})
    stream = kubernetes.watch.Watch().stream(
        core.list_namespaced_secret,
        "shop",
        resource_version=listing.metadata.resource_version,
        timeout_seconds=1,
    )
    seen = [(event["type"], event["object"].metadata.name) for event in stream]
    assert seen == [("ADDED", "new")]


def test_kubernetes_client_watch_reports_an_expired_version_and_recovers_by_relisting(
    kube_server: KubeServer, kube_api: kubernetes.client.ApiClient
) -> None:
    """The client raises ApiException(410) on the in-stream ERROR (retries are off with a
    timeout); the informer pattern re-lists and watches on from the new list's version."""
    core = kubernetes.client.CoreV1Api(kube_api)
    core.create_namespaced_secret("shop", {"metadata": {"name": "old"}})
    stale = core.list_namespaced_secret("shop").metadata.resource_version
    core.create_namespaced_secret("shop", {"metadata": {"name": "missed"}})
    kube_server.compact()
    with pytest.raises(kubernetes.client.ApiException) as expired:
        list(
            kubernetes.watch.Watch().stream(
                core.list_namespaced_secret, "shop", resource_version=stale, timeout_seconds=1
            )
        )
    assert expired.value.status == 410
    assert "Expired: too old resource version" in str(expired.value.reason)
    listing = core.list_namespaced_secret("shop")
    assert sorted(s.metadata.name for s in listing.items) == ["missed", "old"]
    core.create_namespaced_secret("shop", {"metadata": {"name": "new"}})
    stream = kubernetes.watch.Watch().stream(
        core.list_namespaced_secret,
        "shop",
        resource_version=listing.metadata.resource_version,
        timeout_seconds=1,
    )
    assert [(e["type"], e["object"].metadata.name) for e in stream] == [("ADDED", "new")]


def test_kubernetes_client_watch_takes_the_resource_version_of_bookmarks(
    kube_server: KubeServer, kube_api: kubernetes.client.ApiClient
) -> None:
    core = kubernetes.client.CoreV1Api(kube_api)
    core.create_namespaced_secret("shop", {"metadata": {"name": "a"}})
    core.create_namespaced_config_map("shop", {"metadata": {"name": "elsewhere"}})
    watch = kubernetes.watch.Watch()
    events = list(
        watch.stream(core.list_namespaced_secret, "shop", allow_watch_bookmarks=True, timeout_seconds=1)
    )
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    assert watch.resource_version == str(kube_server.call(lambda emulator: emulator.store.resource_version))


def test_kmock_reactions_take_priority_over_the_emulation(
    kube_server: KubeServer, kube_http: KubeHTTP
) -> None:
    def add_reaction(emulator: Any) -> None:
        (
            emulator[kmock.resource("", "v1", "secrets"), kmock.method.POST]
            << 503
            << {"kind": "Status", "code": 503}
        )

    kube_server.call(add_reaction)
    assert kube_http.request("POST", SECRETS, {"metadata": {"name": "a"}}) == (
        503,
        {"kind": "Status", "code": 503},
    )
    assert kube_http.request("GET", f"{SECRETS}/a")[0] == 404  # the intercepted create stored nothing
    assert kube_http.request("GET", SECRETS)[0] == 200


def test_start_on_a_busy_port_raises_in_the_caller(kube_server: KubeServer) -> None:
    with pytest.raises(RuntimeError, match="failed to start") as raised:
        KubeServer(port=kube_server.port).start()
    assert isinstance(raised.value.__cause__, OSError)


# ------------------------------------------------------------------------- in-process listeners


def test_a_listener_sees_only_the_resource_types_it_names_each_with_its_own_copy() -> None:
    store = kube_store.KubeStore()
    secrets = store.type_for("", "v1", "secrets")
    config_maps = store.type_for("", "v1", "configmaps")
    only_secrets: list[tuple[str, str]] = []
    everything: list[tuple[str, str]] = []

    def on_secret(event_type: str, rt: kube_store.ResourceType, obj: dict[str, Any]) -> None:
        only_secrets.append((event_type, obj["metadata"]["name"]))
        obj["metadata"]["name"] = "scribbled"  # the listener's copy, not the store's

    store.add_listener(on_secret, {secrets.key})
    store.add_listener(lambda kind, rt, obj: everything.append((kind, rt.plural)))
    store.create(config_maps, "ns", {"metadata": {"name": "c"}})
    store.create(secrets, "ns", {"metadata": {"name": "s"}, "data": {}})
    assert only_secrets == [("ADDED", "s")]
    assert everything == [("ADDED", "configmaps"), ("ADDED", "secrets")]
    assert store.find(secrets, "ns", "s") is not None

    store.remove_listener(on_secret)
    store.create(secrets, "ns", {"metadata": {"name": "t"}, "data": {}})
    assert only_secrets == [("ADDED", "s")]
    assert everything[-1] == ("ADDED", "secrets")

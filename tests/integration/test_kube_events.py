"""Events through the operator's own client (``rotator.kube_events``), against the emulator: what
the API server stores, and an Event that cannot be posted is logged, never raised."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

import pytest

from rotator.kube import Kube
from rotator.kube_connection import KubeConnection
from rotator.kube_events import MAX_MESSAGE, EventPoster, event_body
from rotator.models import Event
from rotator.policy.ratelimit import TokenBucket
from rotator.sandbox.kube_emulator import Fault
from rotator.sandbox.kube_server import KubeServer

POLICY = {
    "apiVersion": "rotator.dev/v1alpha1",
    "kind": "RotationPolicy",
    "metadata": {"name": "db", "namespace": "shop", "uid": "u-1", "resourceVersion": "7"},
}
NOW = datetime(2026, 12, 2, 5, 0, 0, 123456, tzinfo=UTC)


def test_events_are_stored_about_their_object_named_as_client_go_names_them(
    kube_server: KubeServer, kube_client: KubeConnection
) -> None:
    sent: list[str] = []
    kube = Kube(kube_client, on_request=lambda verb, resource: sent.append(f"{verb} {resource}"))
    ticks = iter([1_000, 1_001])
    poster = EventPoster(kube, instance="rotator-0", clock=lambda: NOW, nanoseconds=lambda: next(ticks))
    poster.post(
        POLICY, [Event("RotationStarted", "rotation r1 started"), Event("RotationFailed", "no", True)]
    )
    assert sent == ["create events", "create events"], "counted like every request"
    stored = kube.request("GET", "/api/v1/namespaces/shop/events")["items"]
    by_name = {item["metadata"]["name"]: item for item in stored}
    assert set(by_name) == {"db.3e8", "db.3e9"}
    started, failed = by_name["db.3e8"], by_name["db.3e9"]
    assert (started["type"], started["reason"], started["message"]) == (
        "Normal",
        "RotationStarted",
        "rotation r1 started",
    )
    assert (failed["type"], failed["reason"]) == ("Warning", "RotationFailed")
    assert started["involvedObject"] == {
        "apiVersion": "rotator.dev/v1alpha1",
        "kind": "RotationPolicy",
        "name": "db",
        "namespace": "shop",
        "uid": "u-1",
    }
    assert started["source"] == {"component": "rotator"}
    assert (started["reportingComponent"], started["reportingInstance"]) == ("rotator", "rotator-0")


def test_an_event_that_cannot_be_posted_is_logged_and_the_next_still_goes(
    kube_server: KubeServer, kube_client: KubeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    kube = Kube(kube_client)
    kube_server.add_fault(Fault(re.compile(r"/events$"), "POST", 403, "Forbidden", times=1))
    ticks = iter([10, 11])
    poster = EventPoster(kube, clock=lambda: NOW, nanoseconds=lambda: next(ticks))
    with caplog.at_level(logging.WARNING, logger="rotator.events"):
        poster.post(POLICY, [Event("First", "message-value-one"), Event("Second", "message-value-two")])
    assert "could not post Event First about RotationPolicy shop/db: 403 Forbidden" in caplog.text
    assert "message-value" not in caplog.text, "the message is not repeated into the logs"
    stored = kube.request("GET", "/api/v1/namespaces/shop/events")["items"]
    assert [item["reason"] for item in stored] == ["Second"]


def test_a_cluster_scoped_object_gets_its_events_in_default_and_long_messages_are_cut() -> None:
    store = {
        "apiVersion": "rotator.dev/v1alpha1",
        "kind": "ClusterRotationStore",
        "metadata": {"name": "vault"},
    }
    body = event_body(store, Event("StoreReady", "x" * 600 + "y" * 600), NOW, 255, "i")
    assert body["metadata"] == {"name": "vault.ff", "namespace": "default"}
    assert body["involvedObject"]["namespace"] == "default"
    assert len(body["message"]) == MAX_MESSAGE
    assert body["message"].startswith("x" * 500)
    assert body["message"].endswith("y" * 500)
    assert "..." in body["message"]
    assert body["firstTimestamp"] == body["eventTime"] == "2026-12-02T05:00:00.123456+00:00"


def test_a_long_object_name_still_makes_a_valid_event_name() -> None:
    long_name = "p" * 253
    body = event_body(
        {**POLICY, "metadata": {"name": long_name, "namespace": "shop"}}, Event("R", "m"), NOW, 1, "i"
    )
    assert len(body["metadata"]["name"]) == 253
    assert body["metadata"]["name"].endswith(".1")
    assert body["involvedObject"]["name"] == long_name


def test_events_take_no_token_from_the_client_side_bucket(
    kube_server: KubeServer, kube_client: KubeConnection
) -> None:
    slept: list[float] = []
    kube = Kube(kube_client, limiter=TokenBucket(qps=1.0, burst=1), clock=lambda: 0.0, sleep=slept.append)
    ticks = iter(range(100, 110))
    EventPoster(kube, clock=lambda: NOW, nanoseconds=lambda: next(ticks)).post(
        POLICY, [Event("A", "a"), Event("B", "b"), Event("C", "c")]
    )
    assert slept == [], "three Events, no wait"
    kube.get_secret("shop", "absent")
    kube.get_secret("shop", "absent")
    assert slept == [1.0], "the bucket's one token went to the first GET: the second waited"

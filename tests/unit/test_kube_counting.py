"""rotator_kube_requests_total's labels, and the watch cache the engine's reads answer from."""

from __future__ import annotations

from typing import Any

import pytest

from rotator.kube import WatchCache, object_path, request_labels, watched_object
from rotator.models.keys import CONSUMER, CONSUMER_LABEL, MANAGED_BY, MANAGED_BY_LABEL


@pytest.mark.parametrize(
    ("method", "path", "query", "labels"),
    [
        ("GET", "/api/v1/namespaces/shop/secrets/db", None, ("get", "secrets")),
        ("GET", "/api/v1/namespaces/shop/secrets", None, ("list", "secrets")),
        ("GET", "/api/v1/namespaces/shop/secrets", {"watch": "true"}, ("watch", "secrets")),
        ("PUT", "/api/v1/namespaces/shop/secrets/db", None, ("update", "secrets")),
        ("POST", "/api/v1/namespaces/shop/secrets", None, ("create", "secrets")),
        (
            "PATCH",
            "/apis/rotator.dev/v1alpha1/namespaces/shop/rotationpolicies/p/status",
            None,
            ("patch", "rotationpolicies/status"),
        ),
        ("GET", "/apis/rotator.dev/v1alpha1/clusterrotationstores/s", None, ("get", "clusterrotationstores")),
        ("GET", "/api/v1/namespaces/shop", None, ("get", "namespaces")),
        (
            "POST",
            "/api/v1/namespaces/shop/serviceaccounts/rotator/token",
            None,
            ("create", "serviceaccounts/token"),
        ),
        ("PATCH", "/apis/apps/v1/namespaces/shop/deployments/api", None, ("patch", "deployments")),
        (
            "PUT",
            "/apis/coordination.k8s.io/v1/namespaces/rotator-system/leases/l",
            None,
            ("update", "leases"),
        ),
    ],
)
def test_labels_are_verb_and_resource_never_names(
    method: str, path: str, query: dict[str, str] | None, labels: tuple[str, str]
) -> None:
    assert request_labels(method, path, query) == labels


def _object(api_version: str, kind: str, name: str, labels: dict[str, str], version: str) -> dict[str, Any]:
    meta = {"name": name, "namespace": "shop", "labels": labels, "resourceVersion": version}
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


def _secret(labels: dict[str, str], version: str = "1") -> dict[str, object]:
    return _object("v1", "Secret", "db", labels, version)


def _deployment(labels: dict[str, str], version: str = "1") -> dict[str, object]:
    return _object("apps/v1", "Deployment", "api", labels, version)


def test_the_cache_keeps_only_watched_objects() -> None:
    cache = WatchCache(watched_object)
    path = "/api/v1/namespaces/shop/secrets/db"
    assert not cache.put(_secret({}))  # a foreign Secret: no watch would ever update it
    assert cache.lookup(path) == (False, None)
    managed = _secret({"app.kubernetes.io/managed-by": "rotator"})
    assert cache.put(managed)
    assert not cache.put(managed), "the echo of what is held is no news"
    assert cache.put(_secret({"app.kubernetes.io/managed-by": "rotator"}, "2"))
    assert cache.lookup(path)[1]["metadata"]["resourceVersion"] == "2"  # type: ignore[index]
    cache.forget(path)
    assert cache.lookup(path) == (False, None)
    store = {"apiVersion": "rotator.dev/v1alpha1", "kind": "ClusterRotationStore", "metadata": {"name": "v"}}
    assert cache.put(store)
    assert cache.lookup("/apis/rotator.dev/v1alpha1/clusterrotationstores/v")[0]


def test_the_cache_holds_only_the_workloads_rotator_restarted_without_managed_fields() -> None:
    cache = WatchCache(watched_object)
    path = "/apis/apps/v1/namespaces/shop/deployments/api"
    assert not cache.put(_deployment({}))  # never restarted by rotator: a GET, never watched
    assert cache.lookup(path) == (False, None)
    consumer = _deployment({CONSUMER_LABEL: CONSUMER})
    consumer["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]
    assert cache.put(consumer)
    known, held = cache.lookup(path)
    assert known
    assert held is not None
    assert "managedFields" not in held["metadata"]
    assert held["metadata"]["labels"] == {CONSUMER_LABEL: CONSUMER}
    assert consumer["metadata"]["managedFields"], "the caller's object is left as it was"


@pytest.mark.parametrize("make", [_secret, _deployment])
def test_a_deleted_event_or_a_lost_label_drops_the_entry(make: Any) -> None:
    """kube-apiserver reports an object leaving a label-selected watch as DELETED, showing it as
    it was (label included; tests/realkube/test_emulator_parity.py), so a DELETED event cannot
    say "absent": the entry is dropped and the next read asks. An object seen without its label
    (a MODIFIED from our own write's answer) is dropped too: no event would update it again."""
    cache = WatchCache(watched_object)
    label = {MANAGED_BY_LABEL: MANAGED_BY} if make is _secret else {CONSUMER_LABEL: CONSUMER}
    path = object_path(make(label))
    assert path is not None
    assert cache.put(make(label))
    cache.gone(make(label, "2"))
    assert cache.lookup(path) == (False, None)
    assert cache.put(make(label, "3"))
    assert cache.put(make({}, "4")), "dropping the copy it held is news: the next read must ask"
    assert cache.lookup(path) == (False, None)
    assert not cache.put(make({}, "5"))


def test_a_watch_event_older_than_our_own_write_does_not_put_the_older_object_back() -> None:
    """The watch lags our writes: an event sent before a write may arrive after its answer.
    Until the watch catches up (an event at or past the write) such an event is dropped, for
    ``echo_wait`` seconds at most; versions that are not numbers are never compared."""
    now = [0.0]
    cache = WatchCache(watched_object, clock=lambda: now[0], echo_wait=60.0)
    label = {MANAGED_BY_LABEL: MANAGED_BY}
    path = object_path(_secret(label))
    assert path is not None

    def held() -> str:
        return cache.lookup(path)[1]["metadata"]["resourceVersion"]  # type: ignore[index]

    assert cache.put(_secret(label, "5"))
    cache.written(_secret(label, "7"))
    assert not cache.put(_secret(label, "6")), "sent before our write: no news"
    assert held() == "7"
    assert not cache.put(_secret(label, "7")), "the echo of our write"
    assert cache.put(_secret(label, "8"))
    assert held() == "8"

    cache.written(_secret(label, "10"))
    now[0] = 61.0  # the floor expired: a server whose versions went back is believed again
    assert cache.put(_secret(label, "9"))
    assert held() == "9"

    cache.written(_secret(label, "12"))
    cache.forget(path)  # a 409 proved the entry stale: the floor goes with it
    assert cache.put(_secret(label, "11"))
    assert held() == "11"

    cache.written(_secret(label, "b2"))
    assert cache.put(_secret(label, "a1")), "opaque versions are never ordered"
    assert held() == "a1"

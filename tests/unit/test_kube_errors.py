"""How API errors become the three classes the engine acts on, and a 403 a condition that names
what to grant (the real kube-apiserver's wording, as tests/realkube proves it end to end)."""

from __future__ import annotations

import json

from rotator.kube import KubeConflict, KubeError, KubeForbidden, KubeUnavailable, _map_error, _retry_after
from rotator.kube_connection import Response


def failure(status: int, reason: str, message: str) -> Response:
    body = json.dumps({"kind": "Status", "status": "Failure", "message": message, "code": status})
    return Response(status, reason, {"Content-Type": "application/json"}, body.encode())


def test_an_rbac_refusal_names_who_which_verb_which_resource_and_where() -> None:
    message = (
        'secrets "db" is forbidden: User "system:serviceaccount:rotator-system:rotator" cannot update '
        'resource "secrets" in API group "" in the namespace "shop"'
    )
    error = _map_error(failure(403, "Forbidden", message))
    assert isinstance(error, KubeForbidden)
    assert (error.user, error.verb, error.resource, error.namespace) == (
        "system:serviceaccount:rotator-system:rotator",
        "update",
        "secrets",
        "shop",
    )
    assert str(error).startswith(
        "403 Forbidden: system:serviceaccount:rotator-system:rotator "
        'cannot update secrets in namespace "shop"'
    )
    assert message in str(error)


def test_a_cluster_scoped_refusal_in_an_api_group() -> None:
    message = (
        'customresourcedefinitions.apiextensions.k8s.io is forbidden: User "u" cannot list resource '
        '"customresourcedefinitions" in API group "apiextensions.k8s.io" at the cluster scope'
    )
    error = _map_error(failure(403, "Forbidden", message))
    assert isinstance(error, KubeForbidden)
    assert "u cannot list customresourcedefinitions.apiextensions.k8s.io cluster-wide" in str(error)


def test_other_statuses_keep_their_classes() -> None:
    assert type(_map_error(failure(403, "Forbidden", "namespace is being terminated"))) is KubeError
    assert isinstance(_map_error(failure(409, "Conflict", "stale")), KubeConflict)
    assert isinstance(_map_error(failure(503, "Unavailable", "")), KubeUnavailable)
    assert type(_map_error(failure(422, "Invalid", "bad"))) is KubeError


def test_a_body_that_is_not_a_status_keeps_the_class_without_a_message() -> None:
    error = _map_error(Response(502, "Bad Gateway", {}, b"<html>proxy</html>"))
    assert isinstance(error, KubeUnavailable)
    assert str(error) == "502 Bad Gateway"


def test_only_a_429_asks_for_a_wait_and_only_one_this_client_honours() -> None:
    assert _retry_after(Response(429, "TooManyRequests", {"Retry-After": "2"}, b"")) == 2.0
    assert _retry_after(Response(503, "Unavailable", {"Retry-After": "2"}, b"")) is None
    assert _retry_after(Response(429, "TooManyRequests", {}, b"")) is None
    assert _retry_after(Response(429, "TooManyRequests", {"Retry-After": "3600"}, b"")) is None

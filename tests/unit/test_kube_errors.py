"""How API errors become the three classes the engine acts on, and a 403 a condition that names
what to grant (the real kube-apiserver's wording, as tests/realkube proves it end to end)."""

from __future__ import annotations

import json

from kubernetes.client.exceptions import ApiException

from rotator.kube import KubeConflict, KubeError, KubeForbidden, KubeUnavailable, _map_error


def api_exception(status: int, reason: str, message: str) -> ApiException:
    exc = ApiException(status=status, reason=reason)
    exc.body = json.dumps({"kind": "Status", "status": "Failure", "message": message, "code": status})
    return exc


def test_an_rbac_refusal_names_who_which_verb_which_resource_and_where() -> None:
    message = (
        'secrets "db" is forbidden: User "system:serviceaccount:rotator-system:rotator" cannot update '
        'resource "secrets" in API group "" in the namespace "shop"'
    )
    error = _map_error(api_exception(403, "Forbidden", message))
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
    error = _map_error(api_exception(403, "Forbidden", message))
    assert isinstance(error, KubeForbidden)
    assert "u cannot list customresourcedefinitions.apiextensions.k8s.io cluster-wide" in str(error)


def test_other_statuses_keep_their_classes() -> None:
    assert type(_map_error(api_exception(403, "Forbidden", "namespace is being terminated"))) is KubeError
    assert isinstance(_map_error(api_exception(409, "Conflict", "stale")), KubeConflict)
    assert isinstance(_map_error(api_exception(503, "Unavailable", "")), KubeUnavailable)
    assert type(_map_error(api_exception(422, "Invalid", "bad"))) is KubeError

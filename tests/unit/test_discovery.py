"""Which Secrets a pod spec consumes, and the workload kinds table it relies on."""

from __future__ import annotations

from typing import Any

import pytest

from rotator.models.spec import WorkloadKind
from rotator.workloads.discovery import consumes_secret, secret_names, workload_secret_names
from rotator.workloads.kinds import KINDS, kind_for, pod_spec_of, pod_template_of, workload_path


def container(**fields: Any) -> dict[str, Any]:
    return {"name": "app", "image": "ghcr.io/shop/app:1", **fields}


ENV_REF = {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "password"}}}
ENV_FROM = {"secretRef": {"name": "app-env"}}

CASES = [
    pytest.param({}, set(), id="empty-spec"),
    pytest.param({"containers": [container()]}, set(), id="no-references"),
    pytest.param({"containers": [container(env=[ENV_REF])]}, {"db-creds"}, id="env-secret-key-ref"),
    pytest.param(
        {
            "containers": [
                container(
                    env=[
                        {"name": "PLAIN", "value": "x"},
                        {"name": "CM", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "k"}}},
                        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    ]
                )
            ]
        },
        set(),
        id="other-env-sources-ignored",
    ),
    pytest.param({"containers": [container(envFrom=[ENV_FROM])]}, {"app-env"}, id="env-from-secret"),
    pytest.param(
        {"containers": [container(envFrom=[{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}])]},
        set(),
        id="env-from-config-map-ignored",
    ),
    pytest.param(
        {"initContainers": [container(env=[ENV_REF])], "containers": [container()]},
        {"db-creds"},
        id="init-container",
    ),
    pytest.param(
        {"containers": [container()], "ephemeralContainers": [container(envFrom=[ENV_FROM])]},
        {"app-env"},
        id="ephemeral-container",
    ),
    pytest.param(
        {
            "containers": [container()],
            "volumes": [{"name": "creds", "secret": {"secretName": "tls-creds", "defaultMode": 420}}],
        },
        {"tls-creds"},
        id="secret-volume",
    ),
    pytest.param(
        {
            "containers": [container()],
            "volumes": [
                {
                    "name": "bundle",
                    "projected": {
                        "defaultMode": 420,
                        "sources": [
                            {"secret": {"name": "db-creds", "items": [{"key": "password", "path": "pw"}]}},
                            {"configMap": {"name": "settings"}},
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {
                                "downwardAPI": {
                                    "items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]
                                }
                            },
                        ],
                    },
                }
            ],
        },
        {"db-creds"},
        id="projected-volume",
    ),
    pytest.param(
        {"containers": [container()], "imagePullSecrets": [{"name": "registry-creds"}]},
        set(),
        id="image-pull-secrets-excluded",
    ),
    pytest.param(
        {
            "containers": [container()],
            "volumes": [
                {
                    "name": "vault",
                    "csi": {
                        "driver": "secrets-store.csi.k8s.io",
                        "nodePublishSecretRef": {"name": "csi-creds"},
                    },
                },
                {"name": "scratch", "emptyDir": {}},
            ],
        },
        set(),
        id="csi-node-publish-secret-excluded",
    ),
    pytest.param(
        {
            "containers": [
                container(
                    env=[
                        {
                            "name": "OPT",
                            "valueFrom": {"secretKeyRef": {"name": "maybe", "key": "k", "optional": True}},
                        }
                    ]
                )
            ]
        },
        {"maybe"},
        id="optional-reference-counts",
    ),
    pytest.param(
        {
            "containers": [container(env=[ENV_REF], envFrom=[ENV_FROM]), container(env=[ENV_REF])],
            "volumes": [{"name": "v", "secret": {"secretName": "db-creds"}}],
        },
        {"db-creds", "app-env"},
        id="deduplicated",
    ),
    pytest.param(
        {
            "containers": [
                container(env=None, envFrom=None),
                "not-a-container",
                container(
                    env=[{"name": "X", "valueFrom": None}, {"name": "Y", "valueFrom": {"secretKeyRef": {}}}]
                ),
            ],
            "volumes": [{"name": "v", "secret": {}}, {"name": "p", "projected": {"sources": None}}],
        },
        set(),
        id="malformed-or-null-fields-tolerated",
    ),
]


@pytest.mark.parametrize(("pod_spec", "expected"), CASES)
def test_secret_names(pod_spec: dict[str, Any], expected: set[str]) -> None:
    assert secret_names(pod_spec) == expected


def test_consumes_secret() -> None:
    spec = {"containers": [container(env=[ENV_REF])], "imagePullSecrets": [{"name": "registry-creds"}]}
    assert consumes_secret(spec, "db-creds")
    assert not consumes_secret(spec, "registry-creds")


DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "orders-api", "namespace": "shop"},
    "spec": {
        "template": {
            "metadata": {"labels": {"app": "orders-api"}},
            "spec": {"containers": [container(env=[ENV_REF])]},
        }
    },
}


def test_workload_secret_names() -> None:
    assert workload_secret_names("Deployment", DEPLOYMENT) == {"db-creds"}
    assert workload_secret_names("StatefulSet", {"spec": {}}) == frozenset()


# --- kinds ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "plural", "path"),
    [
        ("Deployment", "deployments", "/apis/apps/v1/namespaces/shop/deployments/orders-api"),
        ("StatefulSet", "statefulsets", "/apis/apps/v1/namespaces/shop/statefulsets/orders-api"),
        ("DaemonSet", "daemonsets", "/apis/apps/v1/namespaces/shop/daemonsets/orders-api"),
    ],
)
def test_kinds_table(kind: str, plural: str, path: str) -> None:
    entry = kind_for(kind)
    assert entry.kind == kind
    assert entry.plural == plural
    assert entry.api_version == "apps/v1"
    assert entry.template_path == ("spec", "template")
    assert workload_path(kind, "shop", "orders-api") == path
    assert workload_path(kind, "shop") == path.rsplit("/", 1)[0]


def test_kinds_table_covers_exactly_the_spec_kinds() -> None:
    """Every kind the spec accepts can be restarted and judged, and nothing else."""
    assert set(KINDS) == set(WorkloadKind) == {"Deployment", "StatefulSet", "DaemonSet"}


def test_unsupported_kind_names_the_supported_ones() -> None:
    with pytest.raises(ValueError, match="supported: Deployment, StatefulSet, DaemonSet"):
        kind_for("ReplicaSet")


def test_pod_template_and_spec() -> None:
    assert pod_template_of("Deployment", DEPLOYMENT) == DEPLOYMENT["spec"]["template"]  # type: ignore[index]
    assert pod_spec_of("Deployment", DEPLOYMENT) == {"containers": [container(env=[ENV_REF])]}
    assert pod_template_of("Deployment", {"spec": None}) is None
    assert pod_spec_of("Deployment", {"spec": {"template": {"metadata": {}}}}) is None

"""Vault's Kubernetes auth for real, per namespace (DESIGN §6): the operator mints a token for the
``rotator`` service account *of the policy's namespace* (TokenRequest), OpenBao's kubernetes auth
method asks the cluster emulator's TokenReview about it, and OpenBao's own role bindings decide
what that namespace may touch. A role bound to team-a refuses team-b."""

from __future__ import annotations

import uuid

import hvac
import pytest

from rotator.kube import policy_path
from rotator.sandbox import demo
from tests.fixtures.certs import self_signed_ca_pem
from tests.fixtures.rotation import NAMESPACE, Bench

SA = "rotator"
CLUSTER_STORES = "/apis/rotator.dev/v1alpha1/clusterrotationstores"


def throwaway_ca_pem() -> str:
    """Vault insists on a CA when it must not read a local one; the emulator speaks plain HTTP."""
    return self_signed_ca_pem("sandbox-ca")


def tenants(bench: Bench) -> str:
    """A KV root of this test's own: the OpenBao server is shared by the whole session."""
    return "tenants-" + bench.vault_path.rsplit("/", 1)[-1]


def configure_vault(bench: Bench, bound_namespaces: dict[str, str]) -> str:
    """A kubernetes auth mount on OpenBao trusting the emulator; one role per tenant namespace,
    ``rotator-<namespace>``, bound to ``<bound namespace>/rotator`` with audience ``vault`` and a
    policy on the tenant's own prefix only. Returns the mount path."""
    client: hvac.Client = bench.vault_client()
    mount = f"k8s-{uuid.uuid4().hex[:8]}"
    client.sys.enable_auth_method("kubernetes", path=mount)
    client.auth.kubernetes.configure(
        kubernetes_host=bench.kube_server.url,
        kubernetes_ca_cert=throwaway_ca_pem(),
        disable_local_ca_jwt=True,
        mount_point=mount,
    )
    for tenant, bound in bound_namespaces.items():
        prefix = f"secret/%s/{tenants(bench)}/{tenant}/*"
        client.sys.create_or_update_policy(
            name=f"{mount}-{tenant}",
            policy=f"""
path "{prefix % "data"}" {{ capabilities = ["create", "read", "update"] }}
path "{prefix % "metadata"}" {{ capabilities = ["create", "read", "update", "patch"] }}
path "{prefix % "destroy"}" {{ capabilities = ["update"] }}
path "secret/config" {{ capabilities = ["read"] }}
path "sys/internal/ui/mounts/secret" {{ capabilities = ["read"] }}
""",
        )
        client.auth.kubernetes.create_role(
            name=f"rotator-{tenant}",
            bound_service_account_names=[SA],
            bound_service_account_namespaces=[bound],
            audience="vault",
            policies=[f"{mount}-{tenant}"],
            ttl="1h",
            mount_point=mount,
        )
    return mount


def cluster_store(bench: Bench, mount: str, namespaces: list[str]) -> dict[str, object]:
    return {
        "apiVersion": "rotator.dev/v1alpha1",
        "kind": "ClusterRotationStore",
        "metadata": {"name": "vault-k8s"},
        "spec": {
            "vault": {
                "address": bench.vault.address,
                "auth": {"kubernetes": {"role": "rotator-{namespace}", "mountPath": mount}},
            },
            "namespaces": {"names": namespaces},
            "pathPrefix": tenants(bench) + "/{namespace}/",
        },
    }


def tenant(bench: Bench, namespace: str) -> None:
    demo.create(bench.kube, "/api/v1/namespaces", demo.namespace(namespace))
    demo.create(
        bench.kube, f"/api/v1/namespaces/{namespace}/serviceaccounts", demo.service_account(namespace, SA)
    )


def policy_on_cluster_store(bench: Bench, namespace: str) -> dict[str, object]:
    body = demo.rotation_policy(
        namespace, deployment=None, path="db", extra_spec={"revoke": {"gracePeriod": "1s"}}
    )
    body["spec"]["storeRef"] = {"kind": "ClusterRotationStore", "name": "vault-k8s"}
    return body


def test_each_namespace_logs_in_as_its_own_service_account(bench: Bench) -> None:
    bench.seed(create_policy=False, deployment=False)
    mount = configure_vault(bench, {NAMESPACE: NAMESPACE})
    tenant(bench, NAMESPACE)
    bench.kube.create(
        "/apis/rotator.dev/v1alpha1/clusterrotationstores", cluster_store(bench, mount, [NAMESPACE])
    )
    bench.kube.create(policy_path(NAMESPACE), policy_on_cluster_store(bench, NAMESPACE))
    bench.operator.start()
    bench.wait_rotations(1)
    bench.force()
    status = bench.wait_rotations(2).get("status") or {}
    assert status["history"][0]["result"] == "Succeeded"
    stored = bench.vault_client().secrets.kv.v2.read_secret_version(
        path=f"{tenants(bench)}/{NAMESPACE}/db", mount_point="secret", raise_on_deleted_version=False
    )
    assert stored["data"]["data"]["value"] == bench.secret_value()
    bench.seen_values.add(str(stored["data"]["data"]["value"]))


def test_a_role_bound_to_team_a_refuses_team_b(bench: Bench) -> None:
    bench.seed(create_policy=False, deployment=False)
    # team-b's role is bound to team-a's service account: Vault's binding is the tenant boundary.
    mount = configure_vault(bench, {"team-a": "team-a", "team-b": "team-a"})
    for namespace in ("team-a", "team-b"):
        tenant(bench, namespace)
    bench.kube.create(CLUSTER_STORES, cluster_store(bench, mount, ["team-a", "team-b"]))
    for namespace in ("team-a", "team-b"):
        bench.kube.create(policy_path(namespace), policy_on_cluster_store(bench, namespace))
    bench.operator.start()

    def ready(namespace: str) -> dict[str, str]:
        status = (bench.kube.get_policy(namespace, demo.POLICY) or {}).get("status") or {}
        return next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})

    bench.wait(lambda o: ready("team-b").get("reason") == "StoreAuthFailed", 30, "team-b refused")
    refusal = ready("team-b")
    assert refusal["status"] == "False"
    assert "service account team-b/rotator" in refusal["message"]
    assert "spec.vault.auth.kubernetes" in refusal["message"]
    bench.wait(
        lambda o: (
            len(
                ((bench.kube.get_policy("team-a", demo.POLICY) or {}).get("status") or {}).get("history")
                or []
            )
            >= 1
        ),
        30,
        "team-a rotated",
    )
    assert bench.kube.get_secret("team-b", demo.SECRET) is None
    for version_path in (f"{tenants(bench)}/team-b/db",):
        with pytest.raises(hvac.exceptions.InvalidPath):
            bench.vault_client().secrets.kv.v2.read_secret_metadata(path=version_path, mount_point="secret")

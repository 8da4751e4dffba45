"""The operator as it runs in a cluster, on the real control plane (issue 10, item 3): what only
the real thing proves, beside the rotation, rollback and crash tests that run on both Kubernetes
backends (tests/integration/test_rotation.py and test_crash_recovery.py).

`kubectl apply -k manifests/` installs the CRDs, the namespace, the ServiceAccount, the
ClusterRole/Binding and the leader-election Role on kube-apiserver (the session's ``install``,
tests/fixtures/realkube.py); the operator then runs as `rotator run` with a TokenRequest token of
``rotator-system/rotator`` (or of a copy missing one verb) and nothing else: any verb the
manifests lack is a 403 here. Every consumer is a real workload rolled by controller-manager onto
kwok nodes; the store is the shared OpenBao. Each test gets its own namespace and operator
process: the rotation bench (tests/fixtures/rotation.py) on the "real" backend.
"""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import Mapping
from typing import Any

import hvac
import pytest
import yaml

from rotator.kube import policy_path
from rotator.models.keys import ROTATION_ID
from rotator.sandbox import demo
from rotator.workloads.health import rollout_health
from tests.fixtures.kube_backends import CLUSTER_STORES, REAL
from tests.fixtures.realkube import OPERATOR_SA, REPO, SYSTEM, kubectl
from tests.fixtures.rotation import Bench

REPLICAS = 2

pytestmark = [pytest.mark.timeout(150), pytest.mark.parametrize("kube_backend", [REAL], indirect=True)]

Obj = Mapping[str, Any]


def condition(status: Obj, type_: str) -> Obj:
    """The condition of ``type_``, or {} while the operator has not written it yet."""
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), {})


def template_rotation(obj: Obj) -> str | None:
    annotations = obj["spec"]["template"]["metadata"].get("annotations") or {}
    return annotations.get(ROTATION_ID)


def wait_kubernetes_error(bench: Bench) -> Obj:
    """The status once a rotation holds with Ready=False, reason KubernetesError."""

    def holds(obj: Obj) -> bool:
        status = obj.get("status") or {}
        return bool(status.get("rotation")) and condition(status, "Ready").get("reason") == "KubernetesError"

    status: Obj = bench.wait(holds, 30, "Ready=False KubernetesError")["status"]
    return status


def consumer(kind: str, name: str, volume: Mapping[str, Any]) -> dict[str, Any]:
    """A StatefulSet or DaemonSet whose pods read the policy's Secret through ``volume``."""
    labels = {"app": name}
    spec: dict[str, Any] = {
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "containers": [{"name": "app", "image": "registry.example/app:1"}],
                "volumes": [dict(volume)],
            },
        },
    }
    if kind == "StatefulSet":
        spec.update(replicas=REPLICAS, serviceName=name)
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def test_auto_discovery_rolls_every_kind_with_the_granted_list(bench: Bench) -> None:
    """``restart.auto`` lists Deployments, StatefulSets and DaemonSets with the install's RBAC
    (a 403 here if the ClusterRole lacked ``list``) and controller-manager rolls all three."""
    ns = bench.namespace
    kinds = {"StatefulSet": "statefulsets", "DaemonSet": "daemonsets"}
    bench.kube.create(
        f"/apis/apps/v1/namespaces/{ns}/statefulsets",
        consumer("StatefulSet", "db", {"name": "v", "secret": {"secretName": demo.SECRET, "optional": True}}),
    )
    projected = {"name": "v", "projected": {"sources": [{"secret": {"name": demo.SECRET, "optional": True}}]}}
    bench.kube.create(f"/apis/apps/v1/namespaces/{ns}/daemonsets", consumer("DaemonSet", "agent", projected))
    bench.seed(restart_targets=False, extra_spec={"restart": {"auto": True}})
    bench.operator.start()
    assert bench.wait_rotations(1)["status"]["history"][0]["result"] == "Succeeded"
    bench.force()
    status = bench.wait_rotations(2, timeout=90)["status"]
    entry = status["history"][0]
    assert entry["result"] == "Succeeded", status
    workloads = {
        "Deployment": bench.deployment(),
        **{
            kind: bench.kube.get(f"/apis/apps/v1/namespaces/{ns}/{plural}/{name}") or {}
            for (kind, plural), name in zip(kinds.items(), ("db", "agent"), strict=True)
        },
    }
    for kind, obj in workloads.items():
        assert template_rotation(obj) == entry["id"], kind
        assert rollout_health(kind, obj).complete, (kind, rollout_health(kind, obj).message)


def configure_kubernetes_auth(bench: Bench) -> str:
    """OpenBao's kubernetes auth method pointed at the REAL kube-apiserver (HTTPS, the generated
    CA), reviewing tokens with a reviewer account bound to system:auth-delegator; one role,
    ``rotator-<namespace>``, bound to ``<namespace>/rotator`` with audience ``vault`` and a
    policy on the namespace's own prefix. Returns the mount path."""
    ns = bench.namespace
    install = bench.real.install
    kubectl(install.admin_kubeconfig, "create", "serviceaccount", "vault-reviewer", "-n", ns)
    kubectl(
        install.admin_kubeconfig,
        "create",
        "clusterrolebinding",
        f"vault-reviewer-{ns}",
        "--clusterrole=system:auth-delegator",
        f"--serviceaccount={ns}:vault-reviewer",
    )
    reviewer = install.token("vault-reviewer", namespace=ns)
    client = bench.vault_client()
    mount = f"k8s-{uuid.uuid4().hex[:8]}"
    client.sys.enable_auth_method("kubernetes", path=mount)
    client.auth.kubernetes.configure(
        kubernetes_host=bench.real.server.url,
        kubernetes_ca_cert=bench.real.server.pki.ca_path.read_text(),
        token_reviewer_jwt=reviewer,
        disable_local_ca_jwt=True,
        mount_point=mount,
    )
    prefix = f"secret/%s/tenants/{ns}/*"
    client.sys.create_or_update_policy(
        name=f"{mount}-{ns}",
        policy=f"""
path "{prefix % "data"}" {{ capabilities = ["create", "read", "update"] }}
path "{prefix % "metadata"}" {{ capabilities = ["create", "read", "update", "patch"] }}
path "{prefix % "destroy"}" {{ capabilities = ["update"] }}
path "secret/config" {{ capabilities = ["read"] }}
path "sys/internal/ui/mounts/secret" {{ capabilities = ["read"] }}
""",
    )
    client.auth.kubernetes.create_role(
        name=f"rotator-{ns}",
        bound_service_account_names=[OPERATOR_SA],
        bound_service_account_namespaces=[ns],
        audience="vault",
        policies=[f"{mount}-{ns}"],
        ttl="1h",
        mount_point=mount,
    )
    return mount


def test_vault_kubernetes_auth_reviews_tokens_with_the_real_api_server(bench: Bench) -> None:
    ns = bench.namespace
    bench.kube.create(f"/api/v1/namespaces/{ns}/serviceaccounts", demo.service_account(ns, OPERATOR_SA))
    mount = configure_kubernetes_auth(bench)
    store = f"vault-k8s-{ns}"
    bench.kube.create(
        CLUSTER_STORES,
        {
            "apiVersion": "rotator.dev/v1alpha1",
            "kind": "ClusterRotationStore",
            "metadata": {"name": store},
            "spec": {
                "vault": {
                    "address": bench.vault.address,
                    "auth": {"kubernetes": {"role": "rotator-{namespace}", "mountPath": mount}},
                },
                "namespaces": {"names": [ns]},
                "pathPrefix": "tenants/{namespace}/",
            },
        },
    )
    bench.cluster_stores.append(store)
    bench.seed(create_policy=False)
    body = bench.policy_body()
    body["spec"]["storeRef"] = {"kind": "ClusterRotationStore", "name": store}
    body["spec"]["path"] = "db"
    bench.kube.create(policy_path(ns), body)

    bench.operator.start()
    bench.wait_rotations(1)
    bench.force()
    status = bench.wait_rotations(2)["status"]
    assert [h["result"] for h in status["history"]] == ["Succeeded", "Succeeded"], status
    path = f"tenants/{ns}/db"
    assert bench.secret_value() == bench.kv_value(path=path) == bench.kv_value(2, path=path)
    assert bench.kv_value(1, path=path) is None
    store_status = (bench.kube.get(f"{CLUSTER_STORES}/{store}") or {}).get("status") or {}
    assert condition(store_status, "Ready")["status"] == "True", store_status

    # OpenBao really asks kube-apiserver: a TokenRequest token of the bound account logs in, the
    # same token with a forged signature is refused by TokenReview, another account by the role.
    client = hvac.Client(url=bench.vault.address, timeout=5)

    def token(account: str) -> str:
        return bench.real.install.token(account, namespace=ns, audience="vault", duration="10m")

    good = token(OPERATOR_SA)
    assert client.auth.kubernetes.login(f"rotator-{ns}", good, mount_point=mount)["auth"]["client_token"]
    for refused in (good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"), token("default")):
        with pytest.raises(hvac.exceptions.VaultError):
            client.auth.kubernetes.login(f"rotator-{ns}", refused, mount_point=mount)


def limited_account(bench: Bench, resource: str, verb: str) -> str:
    """A copy of the operator's install with ``verb`` on ``resource`` removed from the ClusterRole
    (manifests/clusterrole.yaml), bound to its own account in rotator-system with the
    leader-election Role. Returns the account's name."""
    account = f"rotator-limited-{bench.namespace}"
    role = yaml.safe_load((REPO / "manifests" / "clusterrole.yaml").read_text())
    role["metadata"] = {"name": account}
    removed = False
    for rule in list(role["rules"]):
        if resource in rule["resources"] and verb in rule["verbs"]:
            if rule["resources"] != [resource]:  # split: only this resource loses the verb
                rule["resources"] = [r for r in rule["resources"] if r != resource]
                rule = {**rule, "resources": [resource]}
                role["rules"].append(rule)
            rule["verbs"] = [v for v in rule["verbs"] if v != verb]
            removed = True
    assert removed, f"the ClusterRole grants no {verb} on {resource}"
    subject = [{"kind": "ServiceAccount", "name": account, "namespace": SYSTEM}]
    docs = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account, "namespace": SYSTEM}},
        role,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": account},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": account},
            "subjects": subject,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": account, "namespace": SYSTEM},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "rotator-leader-election",
            },
            "subjects": subject,
        },
    ]
    kubectl(bench.real.install.admin_kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
    return account


def test_a_missing_rbac_verb_is_a_named_condition_with_nothing_half_done(bench: Bench) -> None:
    account = limited_account(bench, "secrets", "update")
    bench.seed()
    bench.operator_as(account).start()
    # Creating the Secret is still allowed: the first rotation completes.
    status = bench.wait_rotations(1)["status"]
    assert status["history"][0]["result"] == "Succeeded", status
    old = bench.secret_value()
    generation = bench.deployment_generation()

    bench.force()
    status = wait_kubernetes_error(bench)
    ready = condition(status, "Ready")
    assert ready["status"] == "False"
    user = f"system:serviceaccount:{SYSTEM}:{account}"
    assert f'{user} cannot update secrets in namespace "{bench.namespace}"' in ready["message"], ready
    # Held before the first store write: no new version anywhere, the Secret and the consumer as
    # they were, the old credential current and alive.
    assert status["rotation"]["step"] == "generate", status["rotation"]
    assert sorted(bench.kv_versions()) == [1]
    assert bench.kv_value() == old
    assert bench.secret_value() == old
    assert bench.deployment_generation() == generation
    assert any("cannot update secrets" in (e.get("message") or "") for e in bench.events())


def test_restart_auto_without_the_list_grant_holds_before_any_write(bench: Bench) -> None:
    """Discovery's lists are asked in the same pre-flight as the dry-run writes: without ``list``
    on deployments the first rotation holds at generate, naming the verb, with nothing written."""
    account = limited_account(bench, "deployments", "list")
    bench.seed(restart_targets=False, extra_spec={"restart": {"auto": True}})
    generation = bench.deployment_generation()
    bench.operator_as(account).start()
    status = wait_kubernetes_error(bench)
    ready = condition(status, "Ready")
    user = f"system:serviceaccount:{SYSTEM}:{account}"
    assert f'{user} cannot list deployments.apps in namespace "{bench.namespace}"' in ready["message"], ready
    assert status["rotation"]["step"] == "generate", status["rotation"]
    assert bench.secret() is None
    assert bench.deployment_generation() == generation


def test_without_the_workload_watch_grant_rotations_read_workloads_with_gets(bench: Bench) -> None:
    """An install whose RBAC predates the workload watch: the operator says which grant is
    missing at start and caches no workload (a cached one that no event updates would stall
    verify until its timeout); restart and verify read the Deployment from the API instead."""
    account = limited_account(bench, "deployments", "watch")
    bench.seed()
    operator = bench.operator_as(account)
    operator.start()
    bench.wait_rotations(1)
    bench.force()
    status = bench.wait_rotations(2)["status"]
    assert [h["result"] for h in status["history"]] == ["Succeeded", "Succeeded"]
    assert "may not watch deployments.apps cluster-wide" in operator.log_path.read_text()
    with urllib.request.urlopen(operator.metrics_url, timeout=5) as response:
        text = response.read().decode()
    sample = 'rotator_kube_requests_total{resource="deployments",verb="get"}'
    gets = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(sample))
    assert gets >= 4, "two restarts and at least one verify look each, all from the API"

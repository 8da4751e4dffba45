"""What only a real control plane proves: our CRD as kube-apiserver judges it, printer columns,
real Deployment rollouts (controller-manager + scheduler + kwok nodes), TokenRequest/TokenReview
and RBAC enforcement. DESIGN §5, "Kubernetes, real"."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from rotator.sandbox.realkube import ApiError, RealKubeServer
from tests.fixtures.realkube import kubectl, wait_for
from tests.unit import test_store_crd_table as store_table
from tests.unit.test_crd_table import BAD, GOOD, design_sample

REPO = Path(__file__).resolve().parents[2]
# crds/rotationstores.rotator.dev.yaml holds two CRDs (RotationStore, ClusterRotationStore).
CRDS = {
    path: [doc["metadata"]["name"] for doc in yaml.safe_load_all(path.read_text()) if doc]
    for path in sorted((REPO / "crds").glob("*.yaml"))
    if any(
        doc and doc.get("kind") == "CustomResourceDefinition" for doc in yaml.safe_load_all(path.read_text())
    )
}
CRD_FILES = sorted(CRDS)
CRD_NAMES = [name for names in CRDS.values() for name in names]
RP = "/apis/rotator.dev/v1alpha1"

pytestmark = pytest.mark.timeout(120)

Obj = dict[str, Any]


def namespace(real_kube: RealKubeServer, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    real_kube.api("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    return name


@pytest.fixture(scope="module")
def crd_installed(real_kube: RealKubeServer, real_kubeconfig: Path) -> None:
    """`kubectl apply` of crds/*.yaml, established (structural schema, CEL within cost)."""
    for path in CRD_FILES:
        kubectl(real_kubeconfig, "apply", "-f", str(path))
    for name in CRD_NAMES:
        kubectl(real_kubeconfig, "wait", "--for=condition=Established", "--timeout=30s", f"crd/{name}")


@pytest.fixture(scope="module")
def shop(real_kube: RealKubeServer, crd_installed: None) -> str:
    """A namespace for policies (the CRD table's rows live in ``shop``)."""
    real_kube.api("POST", "/api/v1/namespaces", {"metadata": {"name": "shop"}})
    return "shop"


# --------------------------------------------------------------------------------- (a) CRD


def test_crd_is_accepted_structural_and_established(real_kube: RealKubeServer, crd_installed: None) -> None:
    """Established means kube-apiserver compiled every CEL rule within its cost budget."""
    assert sorted(CRD_NAMES) == [
        "clusterrotationstores.rotator.dev",
        "rotationpolicies.rotator.dev",
        "rotationstores.rotator.dev",
    ]
    for name in CRD_NAMES:
        crd = real_kube.api("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        conditions = {c["type"]: c for c in crd["status"]["conditions"]}
        assert conditions["Established"]["status"] == "True"
        assert conditions["NamesAccepted"]["status"] == "True"
        assert "NonStructuralSchema" not in conditions, conditions["NonStructuralSchema"]["message"]


def test_kubectl_apply_refuses_an_invalid_policy_naming_the_field(real_kubeconfig: Path, shop: str) -> None:
    good = design_sample()
    good["metadata"]["name"] = "kubectl-applied"
    kubectl(real_kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(good))
    bad = copy.deepcopy(good)
    bad["metadata"]["name"] = "bad-secret-name"
    bad["spec"]["secret"]["name"] = "Orders_DB"
    out = kubectl(real_kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(bad), check=False)
    assert "is invalid" in out, out
    assert "spec.secret.name" in out, out


def _dry_run_create(real_kube: RealKubeServer, obj: Obj) -> None:
    namespace = obj["metadata"]["namespace"]
    real_kube.api("POST", f"{RP}/namespaces/{namespace}/rotationpolicies?dryRun=All", obj)


@pytest.mark.parametrize("build", GOOD)
def test_crd_table_good_rows_are_accepted_by_the_real_server(
    real_kube: RealKubeServer, shop: str, build: Callable[[], Obj]
) -> None:
    _dry_run_create(real_kube, build())


@pytest.mark.parametrize(("build", "field"), BAD)
def test_crd_table_bad_rows_are_refused_by_the_real_server(
    real_kube: RealKubeServer, shop: str, build: Callable[[], Obj], field: str
) -> None:
    with pytest.raises(ApiError) as refused:
        _dry_run_create(real_kube, build())
    assert refused.value.status == 422, refused.value
    assert field in str(refused.value), refused.value


def _dry_run_create_store(real_kube: RealKubeServer, obj: Obj) -> None:
    if obj["kind"] == "ClusterRotationStore":
        real_kube.api("POST", f"{RP}/clusterrotationstores?dryRun=All", obj)
    else:
        namespace = obj["metadata"]["namespace"]
        real_kube.api("POST", f"{RP}/namespaces/{namespace}/rotationstores?dryRun=All", obj)


@pytest.mark.parametrize("build", store_table.GOOD)
def test_store_table_good_rows_are_accepted_by_the_real_server(
    real_kube: RealKubeServer, shop: str, build: Callable[[], Obj]
) -> None:
    _dry_run_create_store(real_kube, build())


@pytest.mark.parametrize(("build", "field"), store_table.BAD)
def test_store_table_bad_rows_are_refused_by_the_real_server(
    real_kube: RealKubeServer, shop: str, build: Callable[[], Obj], field: str
) -> None:
    with pytest.raises(ApiError) as refused:
        _dry_run_create_store(real_kube, build())
    assert refused.value.status == 422, refused.value
    assert f"{field}:" in str(refused.value) or f"{field} " in str(refused.value), refused.value


# ------------------------------------------------------------------------ (b) printer columns


def test_kubectl_get_rp_shows_the_printer_columns(real_kubeconfig: Path, shop: str) -> None:
    policy = design_sample()
    policy["metadata"]["name"] = "columns"
    kubectl(real_kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(policy))
    out = kubectl(real_kubeconfig, "get", "rp", "-A")
    header, *rows = out.splitlines()
    for column in ("NAMESPACE", "NAME", "STORE", "PHASE", "CURRENT", "LAST ROTATION", "NEXT", "READY", "AGE"):
        assert column in header, out
    assert any(row.split()[:2] == [shop, "columns"] for row in rows), out


def test_kubectl_get_stores_by_short_name_shows_the_printer_columns(real_kubeconfig: Path, shop: str) -> None:
    store = store_table.vault_token()
    store["metadata"]["name"] = "columns"
    cluster = store_table.cluster_selector()
    cluster["metadata"]["name"] = "columns"
    for obj in (store, cluster):
        kubectl(real_kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(obj))
    header, *rows = kubectl(real_kubeconfig, "get", "rstore", "-A").splitlines()
    assert header.split() == ["NAMESPACE", "NAME", "PREFIX", "READY", "REASON", "AGE"]
    assert any(row.split()[:3] == [shop, "columns", "{namespace}/"] for row in rows), rows
    header, *rows = kubectl(real_kubeconfig, "get", "crstore").splitlines()
    assert header.split() == ["NAME", "PREFIX", "NAMESPACES", "READY", "REASON", "AGE"]
    assert any(row.split()[:2] == ["columns", "teams/{namespace}/"] for row in rows), rows
    # Both are in the "rotator" category, beside the policies; "rs" stays ReplicaSet's.
    everything = kubectl(real_kubeconfig, "get", "rotator", "-A", "-o", "name")
    assert "rotationstore.rotator.dev/columns" in everything
    assert "clusterrotationstore.rotator.dev/columns" in everything
    assert "replicasets" in kubectl(real_kubeconfig, "api-resources", "--api-group=apps", "-o", "wide")
    replicasets = kubectl(real_kubeconfig, "get", "rs", "-A", "-o", "name")
    assert "rotationstore" not in replicasets


# ---------------------------------------------------------------------- (c) real rollouts


def _deployment(name: str) -> Obj:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]},
            },
        },
    }


def _complete(deployment: Obj) -> bool:
    spec, status = deployment["spec"], deployment.get("status", {})
    replicas = spec["replicas"]
    progressing = {c["type"]: c for c in status.get("conditions", [])}.get("Progressing", {})
    return bool(
        status.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
        and status.get("updatedReplicas") == replicas
        and status.get("readyReplicas") == replicas
        and status.get("availableReplicas") == replicas
        and status.get("replicas") == replicas
        and progressing.get("reason") == "NewReplicaSetAvailable"
    )


def test_kwok_renews_a_lease_for_every_fake_node(real_kube: RealKubeServer) -> None:
    """Node liveness is the Lease, as for a kubelet: without one, controller-manager marks a fake
    node Unknown after its grace period and every pod on it NotReady, for good."""
    path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"

    def renewals() -> dict[str, str]:
        items = real_kube.api("GET", path)["items"]
        return {lease["metadata"]["name"]: lease["spec"].get("renewTime") for lease in items}

    first = wait_for("a Lease per node", lambda: (r := renewals()).keys() >= set(real_kube.node_names) and r)
    wait_for(
        "every Lease renewed",
        lambda: all(renewals()[node] != first[node] for node in real_kube.node_names),
        timeout=60,
    )


def test_deployment_becomes_available_on_kwok_nodes_and_rolls_out(real_kube: RealKubeServer) -> None:
    ns = namespace(real_kube, "apps")
    path = f"/apis/apps/v1/namespaces/{ns}/deployments"
    # The ServiceAccount admission plugin refuses pods until the namespace's `default` exists.
    wait_for(
        "the default ServiceAccount",
        lambda: _exists(real_kube, f"/api/v1/namespaces/{ns}/serviceaccounts/default"),
    )
    real_kube.api("POST", path, _deployment("web"))
    first = wait_for("web to become available", lambda: _if(_complete, real_kube.api("GET", f"{path}/web")))
    available = {c["type"]: c["status"] for c in first["status"]["conditions"]}
    assert available["Available"] == "True"

    pods = real_kube.api("GET", f"/api/v1/namespaces/{ns}/pods?labelSelector=app%3Dweb")["items"]
    assert len(pods) == 3
    assert {p["spec"]["nodeName"] for p in pods} <= set(real_kube.node_names)
    assert all(p["status"]["phase"] == "Running" for p in pods)
    assert all(p["status"]["podIP"].startswith("10.244.") for p in pods)
    old_hash = pods[0]["metadata"]["labels"]["pod-template-hash"]

    # Reloader-style restart: a pod-template annotation makes a new ReplicaSet.
    patch = {"spec": {"template": {"metadata": {"annotations": {"rotator.dev/restartedAt": "now"}}}}}
    real_kube.api("PATCH", f"{path}/web", patch)
    wait_for("the rollout to complete", lambda: _if(_complete, real_kube.api("GET", f"{path}/web")))
    sets = real_kube.api("GET", f"/apis/apps/v1/namespaces/{ns}/replicasets?labelSelector=app%3Dweb")["items"]
    assert len(sets) == 2
    by_hash = {s["metadata"]["labels"]["pod-template-hash"]: s for s in sets}
    assert by_hash[old_hash]["spec"]["replicas"] == 0
    (new,) = (s for h, s in by_hash.items() if h != old_hash)
    assert new["status"]["readyReplicas"] == 3
    # Each controller ran with its own service-account credentials.
    real_kube.api("GET", "/api/v1/namespaces/kube-system/serviceaccounts/deployment-controller")


def _exists(real_kube: RealKubeServer, path: str) -> bool:
    try:
        real_kube.api("GET", path)
    except ApiError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _if(predicate: Callable[[Obj], bool], obj: Obj) -> Obj | None:
    return obj if predicate(obj) else None


# ------------------------------------------------------------- (d) tokens, (e) RBAC


@pytest.fixture(scope="module")
def robot(real_kube: RealKubeServer, real_kubeconfig: Path) -> tuple[str, str, str]:
    """(namespace, ServiceAccount name, TokenRequest token) of an account with no RoleBinding."""
    ns = namespace(real_kube, "tokens")
    real_kube.api("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": "robot"}})
    token = kubectl(real_kubeconfig, "create", "token", "robot", "-n", ns, "--duration=10m").strip()
    return ns, "robot", token


def test_token_request_token_is_authenticated_by_token_review(
    real_kube: RealKubeServer, robot: tuple[str, str, str]
) -> None:
    ns, name, token = robot
    _header, payload, _signature = token.split(".")
    claims = json.loads(_b64url(payload))
    assert claims["sub"] == f"system:serviceaccount:{ns}:{name}"
    assert claims["iss"] == "https://kubernetes.default.svc.cluster.local"

    review = real_kube.api(
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}},
    )
    assert review["status"]["authenticated"] is True
    assert review["status"]["user"]["username"] == f"system:serviceaccount:{ns}:{name}"
    assert "system:serviceaccounts" in review["status"]["user"]["groups"]

    forged = real_kube.api(
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token[:-4] + "AAAA"},
        },
    )
    assert not forged["status"].get("authenticated")


def test_rbac_refuses_a_service_account_without_a_binding(
    real_kube: RealKubeServer, real_kubeconfig: Path, robot: tuple[str, str, str]
) -> None:
    ns, name, token = robot
    secrets = f"/api/v1/namespaces/{ns}/secrets"
    with pytest.raises(ApiError) as refused:
        real_kube.api("GET", secrets, token=token)
    assert refused.value.status == 403
    assert f'"system:serviceaccount:{ns}:{name}" cannot list resource "secrets"' in str(refused.value)

    # And a RoleBinding is what opens it: RBAC is enforced, not merely configured.
    kubectl(real_kubeconfig, "create", "role", "read-secrets", "-n", ns, "--verb=list", "--resource=secrets")
    kubectl(
        real_kubeconfig,
        "create",
        "rolebinding",
        "robot-reads",
        "-n",
        ns,
        "--role=read-secrets",
        f"--serviceaccount={ns}:{name}",
    )
    wait_for("the RoleBinding to take effect", lambda: _allowed(real_kube, secrets, token), timeout=15)


def _allowed(real_kube: RealKubeServer, path: str, token: str) -> bool:
    try:
        real_kube.api("GET", path, token=token)
    except ApiError as exc:
        if exc.status == 403:
            return False
        raise
    return True


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))

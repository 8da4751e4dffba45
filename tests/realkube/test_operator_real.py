"""The operator as it runs in a cluster, on the real control plane (issue 10, items 3 and 4).

`kubectl apply -k manifests/` installs the CRDs, the namespace, the ServiceAccount, the
ClusterRole/Binding and the leader-election Role on kube-apiserver (PodSecurity admission
judges the Deployment's pods, kwok runs them); the operator then runs as `rotator run` with a
TokenRequest token of ``rotator-system/rotator`` and nothing else: any verb the manifests
lack is a 403 here. Every consumer is a real Deployment rolled by controller-manager onto kwok
nodes; the store is the shared OpenBao. Each test gets its own namespace and operator process.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac
import pytest
import yaml

from rotator.cli import CRASH_EXIT_CODE
from rotator.kube import Kube, load_api_client, policy_path
from rotator.models.keys import FORCE_ROTATE, ROTATION_ID
from rotator.sandbox import demo
from rotator.sandbox.openbao import OpenBaoServer
from rotator.sandbox.operator_process import OperatorProcess
from rotator.sandbox.realkube import FAULT_LABEL, FAULT_NEVER_READY, RealKubeServer
from rotator.steps.checkpoints import Checkpoint
from rotator.workloads.health import rollout_health
from tests.fixtures.figures import figure
from tests.realkube.test_control_plane import kubectl, wait_for

REPO = Path(__file__).resolve().parents[2]
SYSTEM = "rotator-system"
OPERATOR_SA = "rotator"
CLUSTER_STORES = "/apis/rotator.dev/v1alpha1/clusterrotationstores"
REPLICAS = 2

pytestmark = pytest.mark.timeout(150)

Obj = Mapping[str, Any]


# ------------------------------------------------------------------------------- install


@dataclass(frozen=True)
class Install:
    """What `kubectl apply -k manifests/` left on the cluster, seen as an admin."""

    kube: Kube
    admin_kubeconfig: Path
    workdir: Path


@pytest.fixture(scope="module")
def install(
    real_kube: RealKubeServer, real_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Install:
    kubectl(real_kubeconfig, "apply", "-k", str(REPO / "manifests"))
    for name in ("rotationpolicies", "rotationstores", "clusterrotationstores"):
        kubectl(
            real_kubeconfig, "wait", "--for=condition=Established", "--timeout=30s", f"crd/{name}.rotator.dev"
        )
    kube = Kube(load_api_client(str(real_kubeconfig)))
    # The operator's own Deployment passes PodSecurity "restricted" (enforced on its namespace) and
    # its pods run on kwok nodes. They are fakes that do nothing: the operator under test runs
    # as a local process with the same identity, so scale them away.
    wait_for(
        "the rotator Deployment to be available",
        lambda: (
            (kube.get(f"/apis/apps/v1/namespaces/{SYSTEM}/deployments/rotator") or {})
            .get("status", {})
            .get("availableReplicas")
            == 2
        ),
        timeout=180,  # the scheduler and kwok share the machine with the rest of the suite
    )
    kubectl(real_kubeconfig, "scale", "-n", SYSTEM, "deployment/rotator", "--replicas=0")
    return Install(kube, real_kubeconfig, tmp_path_factory.mktemp("operator"))


def operator_token(install: Install, account: str = OPERATOR_SA) -> str:
    """A TokenRequest token of ``rotator-system/<account>``, as the kubelet would mount it."""
    return kubectl(
        install.admin_kubeconfig, "create", "token", account, "-n", SYSTEM, "--duration=1h"
    ).strip()


# --------------------------------------------------------------------------------- bench


@dataclass
class Cluster:
    """One test's namespace on the real control plane, the shared OpenBao and the operator."""

    real_kube: RealKubeServer
    install: Install
    vault: OpenBaoServer
    namespace: str
    workdir: Path
    operators: list[OperatorProcess] = field(default_factory=list)
    cluster_stores: list[str] = field(default_factory=list)
    seen_values: set[str] = field(default_factory=set)

    @property
    def kube(self) -> Kube:
        return self.install.kube

    # --- setup -----------------------------------------------------------------------------
    def operator(self, account: str = OPERATOR_SA) -> OperatorProcess:
        """`rotator run` with a kubeconfig holding only ``rotator-system/<account>``'s token."""
        kubeconfig = self.real_kube.write_kubeconfig(
            self.workdir / f"kubeconfig-{account}", token=operator_token(self.install, account)
        )
        process = OperatorProcess(
            kubeconfig,
            self.workdir / f"operator-{account}.log",
            idle_resync=1.0,
            poll=0.2,
            extra_env={"POD_NAMESPACE": SYSTEM},
            # Its own Lease: an operator of an earlier test that crashed holds its lease a while.
            extra_args=("--leader-election-id", f"rotator-leader-{self.namespace}"),
        )
        self.operators.append(process)
        return process

    def seed(
        self,
        *,
        deployment: bool = True,
        restart_targets: bool = True,
        faulty: bool = False,
        progress_deadline: int = 600,
        extra_spec: Mapping[str, Any] | None = None,
        policy: bool = True,
    ) -> None:
        ns = self.namespace
        demo.create(
            self.kube, f"/api/v1/namespaces/{ns}/secrets", demo.token_secret(ns, self.vault.root_token)
        )
        demo.create(self.kube, demo.store_collection(ns), demo.vault_store(ns, self.vault.address))
        if deployment:
            body = demo.consumer_deployment(ns, replicas=REPLICAS, progress_deadline=progress_deadline)
            if faulty:
                body["spec"]["template"]["metadata"]["labels"][FAULT_LABEL] = FAULT_NEVER_READY
            self.kube.create(f"/apis/apps/v1/namespaces/{ns}/deployments", body)
            wait_for("the consumer to roll out", lambda: rollout_complete(self.deployment()), timeout=120)
        if policy:
            target = demo.DEPLOYMENT if deployment and restart_targets else None
            self.kube.create(policy_path(ns), self.policy_body(target, extra_spec))

    def policy_body(self, target: str | None, extra_spec: Mapping[str, Any] | None = None) -> dict[str, Any]:
        spec = {"verify": {"timeout": "60s"}, "revoke": {"gracePeriod": "1s"}, **(extra_spec or {})}
        return demo.rotation_policy(self.namespace, deployment=target, extra_spec=spec)

    # --- observation -----------------------------------------------------------------------
    @property
    def vault_path(self) -> str:
        return f"{self.namespace}/{demo.POLICY}"

    def policy(self) -> Obj:
        obj = self.kube.get_policy(self.namespace, demo.POLICY) or {}
        self.secret_value()
        return obj

    def status(self) -> Obj:
        return self.policy().get("status") or {}

    def wait(self, predicate: Callable[[Obj], bool], timeout: float, what: str) -> Obj:
        deadline = time.monotonic() + timeout
        status: Obj = {}
        while time.monotonic() < deadline:
            status = self.status()
            if predicate(status):
                return status
            self.check_operators()
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; status: {status}")

    def wait_rotations(self, count: int, timeout: float = 60) -> Obj:
        return self.wait(
            lambda s: len(s.get("history") or []) >= count and not s.get("rotation"),
            timeout,
            f"{count} finished rotation(s)",
        )

    def check_operators(self) -> None:
        for process in self.operators:
            if process.process is not None and not process.stopping and process.process.poll() not in (None,):
                code = process.process.poll()
                if code != CRASH_EXIT_CODE:
                    raise AssertionError(f"operator exited with {code}:\n{log_tail(process)}")

    def force(self) -> None:
        self.kube.merge_patch(
            policy_path(self.namespace, demo.POLICY),
            {"metadata": {"annotations": {FORCE_ROTATE: uuid.uuid4().hex[:8]}}},
        )

    def secret(self) -> Obj | None:
        return self.kube.get_secret(self.namespace, demo.SECRET)

    def secret_value(self, key: str = "password") -> str | None:
        data = (self.secret() or {}).get("data") or {}
        values = {k: base64.b64decode(v).decode() for k, v in data.items()}
        self.seen_values.update(values.values())
        return values.get(key)

    def deployment(self) -> Obj:
        return self.kube.get(f"/apis/apps/v1/namespaces/{self.namespace}/deployments/{demo.DEPLOYMENT}") or {}

    def replica_sets(self) -> list[Obj]:
        return self.kube.list(
            f"/apis/apps/v1/namespaces/{self.namespace}/replicasets", label_selector=f"app={demo.DEPLOYMENT}"
        )

    def pods(self) -> list[Obj]:
        return self.kube.list(
            f"/api/v1/namespaces/{self.namespace}/pods", label_selector=f"app={demo.DEPLOYMENT}"
        )

    def vault_client(self) -> hvac.Client:
        return hvac.Client(url=self.vault.address, token=self.vault.root_token, timeout=5)

    def kv_versions(self, path: str | None = None) -> list[int]:
        metadata = self.vault_client().secrets.kv.v2.read_secret_metadata(
            path=path or self.vault_path, mount_point="secret"
        )
        return sorted(int(v) for v in metadata["data"]["versions"])

    def kv_value(self, version: int | None = None, path: str | None = None) -> str | None:
        """A version's value (the latest without ``version``), None once destroyed."""
        try:
            response = self.vault_client().secrets.kv.v2.read_secret_version(
                path=path or self.vault_path,
                version=version,
                mount_point="secret",
                raise_on_deleted_version=False,
            )
        except hvac.exceptions.InvalidPath:
            return None
        data = response["data"]["data"]
        if not data:
            return None
        self.seen_values.add(str(data["value"]))
        return str(data["value"])

    # --- teardown --------------------------------------------------------------------------
    def close(self) -> list[str]:
        """Stop the operators, drop this test's policies and cluster stores (the next test's
        operator must not find them), and return the leaks found in the operators' logs."""
        for process in self.operators:
            process.stop()
        for policy in self.kube.list(policy_path(self.namespace)):
            self.kube.request("DELETE", policy_path(self.namespace, policy["metadata"]["name"]))
        for name in self.cluster_stores:
            self.kube.request("DELETE", f"{CLUSTER_STORES}/{name}")
        logs = "".join(p.log_path.read_text(errors="replace") for p in self.operators if p.log_path.exists())
        return [
            "a generated value appears in the operator log"
            for v in self.seen_values
            if len(v) >= 8 and v in logs
        ]


def log_tail(process: OperatorProcess, lines: int = 40) -> str:
    if not process.log_path.exists():
        return ""
    return "\n".join(process.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def cluster(
    request: pytest.FixtureRequest,
    real_kube: RealKubeServer,
    install: Install,
    openbao: OpenBaoServer,
    tmp_path: Path,
) -> Iterator[Cluster]:
    began = time.monotonic()
    ns = f"rk-{uuid.uuid4().hex[:6]}"
    install.kube.create("/api/v1/namespaces", demo.namespace(ns))
    # The ServiceAccount admission plugin refuses pods until the namespace's `default` exists.
    wait_for(
        "the default ServiceAccount",
        lambda: install.kube.get(f"/api/v1/namespaces/{ns}/serviceaccounts/default"),
    )
    bench = Cluster(real_kube, install, openbao, ns, tmp_path)
    try:
        yield bench
    except BaseException:
        raise
    finally:
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            for process in bench.operators:
                print(f"--- {process.log_path}\n{log_tail(process, 80)}")
        leaks = bench.close()
        figure(f"real control plane: {request.node.name} {time.monotonic() - began:.1f} s")
    assert not leaks, leaks


# ------------------------------------------------------------------------------- helpers


def rollout_complete(deployment: Obj) -> bool:
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    replicas = spec.get("replicas")
    progressing = {c["type"]: c for c in status.get("conditions", [])}.get("Progressing", {})
    return bool(
        deployment
        and status.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
        and status.get("updatedReplicas") == replicas
        and status.get("readyReplicas") == replicas
        and status.get("availableReplicas") == replicas
        and status.get("replicas") == replicas
        and progressing.get("reason") == "NewReplicaSetAvailable"
    )


def condition(status: Obj, type_: str) -> Obj:
    """The condition of ``type_``, or {} while the operator has not written it yet."""
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), {})


def pod_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def template_rotation(obj: Obj) -> str | None:
    annotations = obj["spec"]["template"]["metadata"].get("annotations") or {}
    return annotations.get(ROTATION_ID)


# --------------------------------------------------------------------------------- tests


def test_rotation_initial_and_forced_rolls_the_deployment_on_kwok(cluster: Cluster) -> None:
    cluster.seed()
    cluster.operator().start()
    status = cluster.wait_rotations(1)
    assert status["history"][0]["result"] == "Succeeded", status
    assert status["history"][0]["reason"] == "Initial"
    first = cluster.secret_value()
    assert first is not None
    assert first == cluster.kv_value(1) == cluster.kv_value()

    before = {rs["metadata"]["name"] for rs in cluster.replica_sets()}
    cluster.force()
    status = cluster.wait_rotations(2)
    entry = status["history"][0]
    assert entry["result"] == "Succeeded", status
    assert entry["reason"] == "Forced"
    assert condition(status, "Ready")["status"] == "True"

    # The Secret holds the store's current value; the old version was destroyed after verify.
    second = cluster.secret_value()
    assert second is not None
    assert second != first
    assert second == cluster.kv_value() == cluster.kv_value(2)
    assert cluster.kv_versions() == [1, 2]
    assert cluster.kv_value(1) is None
    assert cluster.secret_value("password.previous") is None

    # controller-manager rolled the Deployment to a new ReplicaSet whose pods kwok made Ready.
    deployment = cluster.deployment()
    assert rollout_complete(deployment), deployment.get("status")
    assert template_rotation(deployment) == entry["id"]
    current = [rs for rs in cluster.replica_sets() if rs["metadata"]["name"] not in before]
    assert len(current) == 1, [rs["metadata"]["name"] for rs in cluster.replica_sets()]
    assert current[0]["status"].get("readyReplicas") == REPLICAS
    assert all(
        rs["spec"]["replicas"] == 0 for rs in cluster.replica_sets() if rs["metadata"]["name"] in before
    )
    wait_for(
        "only the new ReplicaSet's pods to be left",
        lambda: (
            len(pods := cluster.pods()) == REPLICAS
            and all(
                pod_ready(p) and p["metadata"]["annotations"].get(ROTATION_ID) == entry["id"] for p in pods
            )
        ),
    )
    # Each pod started with Secret version 2: recorded as a kubelet reads it, before kwok starts it
    # (the same bookkeeping the emulator's rollout simulator keeps).
    pods = cluster.real_kube.workload_pods("Deployment", cluster.namespace, demo.DEPLOYMENT)
    assert len(pods) == REPLICAS
    assert all(p.ready and p.secret_versions[demo.SECRET].version == "2" for p in pods), pods


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


def test_auto_discovery_rolls_every_kind_with_the_granted_list(cluster: Cluster) -> None:
    """``restart.auto`` lists Deployments, StatefulSets and DaemonSets with the install's RBAC
    (a 403 here if the ClusterRole lacked ``list``) and controller-manager rolls all three."""
    ns = cluster.namespace
    kinds = {"StatefulSet": "statefulsets", "DaemonSet": "daemonsets"}
    cluster.kube.create(
        f"/apis/apps/v1/namespaces/{ns}/statefulsets",
        consumer("StatefulSet", "db", {"name": "v", "secret": {"secretName": demo.SECRET, "optional": True}}),
    )
    projected = {"name": "v", "projected": {"sources": [{"secret": {"name": demo.SECRET, "optional": True}}]}}
    cluster.kube.create(
        f"/apis/apps/v1/namespaces/{ns}/daemonsets", consumer("DaemonSet", "agent", projected)
    )
    cluster.seed(restart_targets=False, extra_spec={"restart": {"auto": True}})
    cluster.operator().start()
    assert cluster.wait_rotations(1)["history"][0]["result"] == "Succeeded"
    cluster.force()
    status = cluster.wait_rotations(2, timeout=90)
    entry = status["history"][0]
    assert entry["result"] == "Succeeded", status
    workloads = {
        "Deployment": cluster.deployment(),
        **{
            kind: cluster.kube.get(f"/apis/apps/v1/namespaces/{ns}/{plural}/{name}") or {}
            for (kind, plural), name in zip(kinds.items(), ("db", "agent"), strict=True)
        },
    }
    for kind, obj in workloads.items():
        assert template_rotation(obj) == entry["id"], kind
        assert rollout_health(kind, obj).complete, (kind, rollout_health(kind, obj).message)


def test_failed_rollout_rolls_back_and_keeps_the_old_credential(cluster: Cluster) -> None:
    # The consumer's pods that rotator restarts never turn Ready (kwok's fault stage): a new
    # credential that breaks the app. The initial rotation restarts nothing, so it succeeds.
    cluster.seed(faulty=True, restart_targets=False, progress_deadline=4)
    cluster.operator().start()
    cluster.wait_rotations(1)
    old = cluster.secret_value()
    assert old is not None
    assert old == cluster.kv_value(1)
    cluster.kube.merge_patch(
        policy_path(cluster.namespace, demo.POLICY),
        {"spec": {"restart": {"targets": [{"kind": "Deployment", "name": demo.DEPLOYMENT}]}}},
    )
    cluster.force()
    status = cluster.wait_rotations(2, timeout=90)
    entry = status["history"][0]
    assert entry["result"] == "RolledBack", status
    assert condition(status, "Degraded")["status"] == "True"

    # The old value is back in the Secret and is the store's latest again; the new one is gone.
    assert cluster.secret_value() == old
    assert cluster.kv_value() == old
    assert cluster.kv_value(1) == old, "the old credential was revoked"
    assert cluster.kv_value(2) is None
    # The real Deployment controller gave up on the rollout (ProgressDeadlineExceeded); the
    # rollback restarted the consumer again, and the pods from before the rotation kept serving.
    degraded = condition(status, "Degraded")["message"]
    assert "exceeded its progress deadline" in degraded, degraded
    ready_pods = [p for p in cluster.pods() if pod_ready(p)]
    assert len(ready_pods) == REPLICAS
    assert all(p["metadata"].get("annotations", {}).get(ROTATION_ID) is None for p in ready_pods)


def test_crash_after_the_secret_write_completes_with_one_new_version(cluster: Cluster) -> None:
    point = str(Checkpoint.SYNC_AFTER_WRITE)
    cluster.seed()
    operator = cluster.operator()
    operator.start()
    cluster.wait_rotations(1)
    operator.stop()
    generation = cluster.deployment()["metadata"]["generation"]

    operator.start(crash_at=point)
    cluster.force()
    assert operator.wait_exit(timeout=60) == CRASH_EXIT_CODE, f"never reached {point}"
    assert cluster.status()["rotation"]["step"] == "sync"
    assert cluster.kv_value(1) is not None, "the old credential was revoked before verification"

    operator.start()
    status = cluster.wait_rotations(2)
    assert status["history"][0]["result"] == "Succeeded", status
    assert cluster.kv_versions() == [1, 2], "a crash produced a second new credential"
    assert cluster.kv_value(1) is None
    assert cluster.secret_value() == cluster.kv_value(2)
    assert cluster.deployment()["metadata"]["generation"] == generation + 1, "restarted more than once"
    wait_for("the rollout to complete", lambda: rollout_complete(cluster.deployment()), timeout=30)


def configure_kubernetes_auth(cluster: Cluster) -> str:
    """OpenBao's kubernetes auth method pointed at the REAL kube-apiserver (HTTPS, the generated
    CA), reviewing tokens with a reviewer account bound to system:auth-delegator; one role,
    ``rotator-<namespace>``, bound to ``<namespace>/rotator`` with audience ``vault`` and a
    policy on the namespace's own prefix. Returns the mount path."""
    ns = cluster.namespace
    admin = cluster.install.admin_kubeconfig
    kubectl(admin, "create", "serviceaccount", "vault-reviewer", "-n", ns)
    kubectl(
        admin,
        "create",
        "clusterrolebinding",
        f"vault-reviewer-{ns}",
        "--clusterrole=system:auth-delegator",
        f"--serviceaccount={ns}:vault-reviewer",
    )
    reviewer = kubectl(admin, "create", "token", "vault-reviewer", "-n", ns, "--duration=1h").strip()
    client = cluster.vault_client()
    mount = f"k8s-{uuid.uuid4().hex[:8]}"
    client.sys.enable_auth_method("kubernetes", path=mount)
    client.auth.kubernetes.configure(
        kubernetes_host=cluster.real_kube.url,
        kubernetes_ca_cert=cluster.real_kube.pki.ca_path.read_text(),
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


def test_vault_kubernetes_auth_reviews_tokens_with_the_real_api_server(cluster: Cluster) -> None:
    ns = cluster.namespace
    cluster.kube.create(f"/api/v1/namespaces/{ns}/serviceaccounts", demo.service_account(ns, OPERATOR_SA))
    mount = configure_kubernetes_auth(cluster)
    store = f"vault-k8s-{ns}"
    cluster.kube.create(
        CLUSTER_STORES,
        {
            "apiVersion": "rotator.dev/v1alpha1",
            "kind": "ClusterRotationStore",
            "metadata": {"name": store},
            "spec": {
                "vault": {
                    "address": cluster.vault.address,
                    "auth": {"kubernetes": {"role": "rotator-{namespace}", "mountPath": mount}},
                },
                "namespaces": {"names": [ns]},
                "pathPrefix": "tenants/{namespace}/",
            },
        },
    )
    cluster.cluster_stores.append(store)
    cluster.seed(policy=False)
    body = cluster.policy_body(demo.DEPLOYMENT)
    body["spec"]["storeRef"] = {"kind": "ClusterRotationStore", "name": store}
    body["spec"]["path"] = "db"
    cluster.kube.create(policy_path(ns), body)

    cluster.operator().start()
    cluster.wait_rotations(1)
    cluster.force()
    status = cluster.wait_rotations(2)
    assert [h["result"] for h in status["history"]] == ["Succeeded", "Succeeded"], status
    path = f"tenants/{ns}/db"
    assert cluster.secret_value() == cluster.kv_value(path=path) == cluster.kv_value(2, path=path)
    assert cluster.kv_value(1, path=path) is None
    store_status = (cluster.kube.get(f"{CLUSTER_STORES}/{store}") or {}).get("status") or {}
    assert condition(store_status, "Ready")["status"] == "True", store_status

    # OpenBao really asks kube-apiserver: a TokenRequest token of the bound account logs in, the
    # same token with a forged signature is refused by TokenReview, another account by the role.
    client = hvac.Client(url=cluster.vault.address, timeout=5)
    admin = cluster.install.admin_kubeconfig

    def token(account: str) -> str:
        return kubectl(
            admin, "create", "token", account, "-n", ns, "--audience=vault", "--duration=10m"
        ).strip()

    good = token(OPERATOR_SA)
    assert client.auth.kubernetes.login(f"rotator-{ns}", good, mount_point=mount)["auth"]["client_token"]
    for refused in (good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"), token("default")):
        with pytest.raises(hvac.exceptions.VaultError):
            client.auth.kubernetes.login(f"rotator-{ns}", refused, mount_point=mount)


def limited_account(cluster: Cluster, resource: str, verb: str) -> str:
    """A copy of the operator's install with ``verb`` on ``resource`` removed from the ClusterRole
    (manifests/clusterrole.yaml), bound to its own account in rotator-system with the
    leader-election Role. Returns the account's name."""
    account = f"rotator-limited-{cluster.namespace}"
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
    kubectl(cluster.install.admin_kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
    return account


def test_a_missing_rbac_verb_is_a_named_condition_with_nothing_half_done(cluster: Cluster) -> None:
    account = limited_account(cluster, "secrets", "update")
    cluster.seed()
    cluster.operator(account).start()
    # Creating the Secret is still allowed: the first rotation completes.
    status = cluster.wait_rotations(1)
    assert status["history"][0]["result"] == "Succeeded", status
    old = cluster.secret_value()
    generation = cluster.deployment()["metadata"]["generation"]

    cluster.force()
    status = cluster.wait(
        lambda s: (s.get("rotation") or {}) and condition(s, "Ready").get("reason") == "KubernetesError",
        30,
        "Ready=False KubernetesError",
    )
    ready = condition(status, "Ready")
    assert ready["status"] == "False"
    user = f"system:serviceaccount:{SYSTEM}:{account}"
    assert f'{user} cannot update secrets in namespace "{cluster.namespace}"' in ready["message"], ready
    # Held before the first store write: no new version anywhere, the Secret and the consumer as
    # they were, the old credential current and alive.
    assert status["rotation"]["step"] == "generate", status["rotation"]
    assert cluster.kv_versions() == [1]
    assert cluster.kv_value() == old
    assert cluster.secret_value() == old
    assert cluster.deployment()["metadata"]["generation"] == generation
    events = cluster.kube.list(f"/api/v1/namespaces/{cluster.namespace}/events")
    assert any("cannot update secrets" in (e.get("message") or "") for e in events)


def test_restart_auto_without_the_list_grant_holds_before_any_write(cluster: Cluster) -> None:
    """Discovery's lists are asked in the same pre-flight as the dry-run writes: without ``list``
    on deployments the first rotation holds at generate, naming the verb, with nothing written."""
    account = limited_account(cluster, "deployments", "list")
    cluster.seed(restart_targets=False, extra_spec={"restart": {"auto": True}})
    generation = cluster.deployment()["metadata"]["generation"]
    cluster.operator(account).start()
    status = cluster.wait(
        lambda s: bool(s.get("rotation")) and condition(s, "Ready").get("reason") == "KubernetesError",
        30,
        "Ready=False KubernetesError",
    )
    ready = condition(status, "Ready")
    user = f"system:serviceaccount:{SYSTEM}:{account}"
    assert f'{user} cannot list deployments.apps in namespace "{cluster.namespace}"' in ready["message"], (
        ready
    )
    assert status["rotation"]["step"] == "generate", status["rotation"]
    assert cluster.secret() is None
    assert cluster.deployment()["metadata"]["generation"] == generation

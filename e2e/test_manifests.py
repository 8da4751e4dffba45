"""Static checks of the install manifests, the examples and the Dockerfile (no cluster needed).

The kind-based e2e (run.sh) proves these objects work on a real API server; this file keeps them
honest in the normal test run: every YAML is a well-formed Kubernetes object, the ClusterRole
stays least-privilege, the operator pod keeps its hardening and its ports agree with its probes,
its args parse with the real CLI, the alerts only name metrics the operator exports, and the
example RotationPolicies and stores are accepted by both the pydantic models and the CRD schemas,
and every example policy references a store (and every store a credential) the examples define.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
MANIFESTS = REPO / "manifests"
CRD_PATH = REPO / "crds" / "rotationpolicies.rotator.dev.yaml"
STORE_CRD_PATH = REPO / "crds" / "rotationstores.rotator.dev.yaml"
NAMESPACE = "rotator-system"
STORE_KINDS = ("RotationStore", "ClusterRotationStore")
STORE_CREDENTIAL_LABEL = "rotator.dev/store-credential"

# Files deliberately left out of every kustomization (applied by hand, see their comments).
STANDALONE = {
    "examples/aws-rotationpolicy.yaml",
    "examples/cluster-rotationstore.yaml",
    "examples/networkpolicy-egress.yaml",
}

Obj = dict[str, Any]


def yaml_files() -> list[Path]:
    return sorted(p for p in MANIFESTS.rglob("*") if p.suffix in {".yaml", ".yml"} and p.is_file())


def rel(path: Path) -> str:
    return path.relative_to(MANIFESTS).as_posix()


def docs(path: Path) -> list[Obj]:
    loaded = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    for doc in loaded:
        assert isinstance(doc, dict), f"{rel(path)}: every document must be a mapping"
    return loaded


def all_objects() -> Iterator[tuple[Path, Obj]]:
    for path in yaml_files():
        for doc in docs(path):
            if doc.get("kind") != "Kustomization":
                yield path, doc


def objects(kind: str, under: str = "") -> list[Obj]:
    return [d for p, d in all_objects() if d["kind"] == kind and rel(p).startswith(under)]


def one(kind: str, under: str = "") -> Obj:
    found = objects(kind, under)
    assert len(found) == 1, f"expected exactly one {kind} under manifests/{under}, found {len(found)}"
    return found[0]


def install_objects() -> list[Obj]:
    """Objects of the cluster-wide install: manifests/*.yaml and the shared manifests/base/ (not
    monitoring/, examples/ or the namespaced install mode)."""
    return [d for p, d in all_objects() if p.parent in (MANIFESTS, MANIFESTS / "base")]


def install_one(kind: str) -> Obj:
    found = [d for d in install_objects() if d["kind"] == kind]
    assert len(found) == 1, f"expected exactly one {kind} in the base install, found {len(found)}"
    return found[0]


def operator_container() -> Obj:
    containers = install_one("Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: Obj = containers[0]
    return container


def flag(args: list[str], name: str) -> str | None:
    """Value of ``--name V`` or ``--name=V`` in a container's args."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def resolve_port(container: Mapping[str, Any], port: int | str) -> int:
    """A probe/Service port (number or name) as the container port number it reaches."""
    ports = container.get("ports") or []
    if isinstance(port, int):
        assert port in {p["containerPort"] for p in ports}, f"port {port} is not declared by the container"
        return port
    by_name = {p.get("name"): p["containerPort"] for p in ports}
    assert port in by_name, f"named port {port!r} is not declared by the container"
    return int(by_name[port])


# --- every file ------------------------------------------------------------------------------


def test_there_are_manifests() -> None:
    names = {rel(p) for p in yaml_files()}
    assert {"kustomization.yaml", "base/deployment.yaml", "clusterrole.yaml"} <= names
    assert {"namespaced/kustomization.yaml", "base/kustomization.yaml"} <= names
    assert "monitoring/prometheusrule.yaml" in names
    assert CRD_PATH.is_file(), "the kustomization installs ../crds/rotationpolicies.rotator.dev.yaml"
    assert STORE_CRD_PATH.is_file(), "the kustomization installs ../crds/rotationstores.rotator.dev.yaml"


@pytest.mark.parametrize("path", yaml_files(), ids=rel)
def test_every_document_is_a_kubernetes_object(path: Path) -> None:
    loaded = docs(path)
    assert loaded, f"{rel(path)} is empty"
    for doc in loaded:
        for field in ("apiVersion", "kind"):
            assert isinstance(doc.get(field), str), f"{rel(path)}: {field} missing"
            assert doc[field], f"{rel(path)}: {field} empty"
        if doc["kind"] == "Kustomization":
            continue  # a kustomize file, not an API object: it has no metadata.name
        name = (doc.get("metadata") or {}).get("name")
        assert isinstance(name, str), f"{rel(path)}: {doc['kind']} without metadata.name"
        assert name, f"{rel(path)}: {doc['kind']} with an empty metadata.name"


def test_kustomizations_reference_existing_files_and_every_file_is_installed() -> None:
    referenced: set[Path] = set()
    for path in yaml_files():
        if path.name != "kustomization.yaml":
            continue
        for resource in docs(path)[0].get("resources", []):
            target = (path.parent / resource).resolve()
            assert target.exists(), f"{rel(path)} references missing {resource}"
            referenced.add(target)
    for path in yaml_files():
        if path.name == "kustomization.yaml" or rel(path) in STANDALONE:
            continue
        assert path.resolve() in referenced, f"{rel(path)} is not listed in any kustomization.yaml"
    assert CRD_PATH.parent.resolve() in referenced, (
        "the CRD must be installed by manifests/kustomization.yaml"
    )
    crd_kustomization = docs(CRD_PATH.parent / "kustomization.yaml")[0]
    assert CRD_PATH.name in crd_kustomization["resources"]
    assert STORE_CRD_PATH.name in crd_kustomization["resources"]


def test_no_object_name_is_defined_twice() -> None:
    seen: dict[tuple[str, str, str], str] = {}
    for path, doc in all_objects():
        key = (doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"])
        assert key not in seen, f"{key} defined in {seen.get(key)} and {rel(path)}"
        seen[key] = rel(path)


def test_install_objects_live_in_the_operator_namespace() -> None:
    namespaced = {
        "ServiceAccount",
        "Deployment",
        "Service",
        "PrometheusRule",
        "ServiceMonitor",
        "Role",
        "RoleBinding",
    }
    assert one("Namespace", "base/namespace.yaml")["metadata"]["name"] == NAMESPACE
    for path, doc in all_objects():
        # examples/ are tenants' objects; namespaced/role.yaml is granted in each watched namespace.
        if doc["kind"] in namespaced and not rel(path).startswith(("examples/", "namespaced/")):
            assert doc["metadata"].get("namespace") == NAMESPACE, f"{rel(path)}: {doc['kind']} namespace"


@pytest.mark.parametrize("directory", ["", "namespaced", "monitoring", "examples"])
def test_kustomize_builds(directory: str) -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(MANIFESTS / directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    built = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert built
    if directory == "":
        kinds = {d["kind"] for d in built}
        assert {
            "CustomResourceDefinition",
            "Namespace",
            "ClusterRole",
            "Role",
            "RoleBinding",
            "Deployment",
            "Service",
        } <= kinds
        crds = {d["spec"]["names"]["kind"] for d in built if d["kind"] == "CustomResourceDefinition"}
        assert crds == {"RotationPolicy", *STORE_KINDS}
    if directory == "examples":
        # What `kubectl apply -k manifests/examples` creates is whole: its policies' stores and
        # those stores' credential Secrets come with it.
        policies = [d for d in built if d["kind"] == "RotationPolicy"]
        assert policies
        for policy in policies:
            store = referenced_store(policy, built)
            for namespace, name, keys in credential_refs(store):
                secret = find(built, "Secret", name, namespace)
                assert secret is not None, f"{store['metadata']['name']}: Secret {namespace}/{name} missing"
                assert set(keys) <= set(secret.get("stringData", {})) | set(secret.get("data", {}))


# --- RBAC ------------------------------------------------------------------------------------


def rules() -> list[Obj]:
    role = install_one("ClusterRole")
    found: list[Obj] = role["rules"]
    return found


def granted(group: str, resource: str) -> set[str]:
    verbs: set[str] = set()
    for rule in rules():
        if group in rule.get("apiGroups", []) and resource in rule.get("resources", []):
            verbs |= set(rule.get("verbs", []))
    return verbs


def test_clusterrole_has_no_wildcards() -> None:
    for rule in rules():
        for field in ("verbs", "resources", "apiGroups"):
            assert "*" not in rule.get(field, []), f"wildcard in {field}: {rule}"
        assert not any("*" in r for r in rule.get("resources", [])), rule
        assert "nonResourceURLs" not in rule, rule
        assert "resourceNames" not in rule or rule["resourceNames"], rule


def test_secrets_are_never_deleted() -> None:
    """The exact inventory of verbs is tests/unit/test_rbac.py's; this is the line never crossed.
    list/watch are granted for the label-selected watch on managed Secrets (RBAC cannot restrict
    by label; the code only ever asks with app.kubernetes.io/managed-by=rotator)."""
    verbs = granted("", "secrets")
    assert not verbs & {"delete", "deletecollection", "patch"}, verbs
    assert verbs == {"get", "create", "update", "list", "watch"}


def test_clusterrole_grants_nothing_destructive_or_escalating() -> None:
    for rule in rules():
        dangerous = {"delete", "deletecollection", "escalate", "bind", "impersonate"}
        assert not set(rule.get("verbs", [])) & dangerous, rule
        # serviceaccounts/token (create) is granted on purpose: rotator mints tokens for the
        # policy namespace's service account (TokenRequest) instead of sending its own.
        assert not set(rule.get("resources", [])) & {
            "clusterroles",
            "clusterrolebindings",
            "roles",
            "rolebindings",
            "pods/exec",
            "nodes",
        }
        if "serviceaccounts/token" in rule.get("resources", []):
            assert rule["verbs"] == ["create"], rule


def test_binding_ties_the_deployment_service_account_to_the_role() -> None:
    binding = install_one("ClusterRoleBinding")
    role = install_one("ClusterRole")
    account = install_one("ServiceAccount")
    pod_spec = install_one("Deployment")["spec"]["template"]["spec"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": NAMESPACE} in binding[
        "subjects"
    ]
    assert pod_spec["serviceAccountName"] == account["metadata"]["name"]


# --- the operator Deployment -----------------------------------------------------------------


def test_deployment_runs_two_replicas_under_leader_election() -> None:
    """Two replicas may run at once (a rolling update, a standby): only the Lease holder
    reconciles, so leader election must be on and the pod must know its name and namespace."""
    from rotator.cli import build_parser

    spec = install_one("Deployment")["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["type"] == "RollingUpdate"
    args = build_parser().parse_args(["run", *operator_container().get("args", [])])
    assert args.leader_election, "two replicas without leader election would both rotate"
    env = {
        e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        for e in operator_container()["env"]
    }
    assert env["POD_NAMESPACE"] == "metadata.namespace", "the Lease lives in the operator's namespace"
    assert env["POD_NAME"] == "metadata.name", "the holder identity names the pod"


def test_leader_election_role_grants_only_the_lease_verbs() -> None:
    role = install_one("Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}
    ]
    binding = install_one("RoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    account = install_one("ServiceAccount")["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}]
    assert install_one("Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == account


def test_deployment_runs_hardened_and_non_root() -> None:
    pod = install_one("Deployment")["spec"]["template"]["spec"]
    container = operator_container()
    pod_sc, sc = pod.get("securityContext", {}), container.get("securityContext", {})
    assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True
    assert sc.get("runAsUser", pod_sc.get("runAsUser")) == 65532  # the Dockerfile's USER
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert not sc["capabilities"].get("add")
    seccomp = sc.get("seccompProfile") or pod_sc.get("seccompProfile")
    assert seccomp == {"type": "RuntimeDefault"}
    assert not sc.get("privileged")
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(key), key


def test_deployment_sets_requests_and_limits() -> None:
    resources = operator_container()["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]


def test_liveness_probe_reaches_the_liveness_port() -> None:
    container = operator_container()
    args = container.get("args", [])
    liveness_port = int(flag(args, "--liveness-port") or 8080)  # the CLI default
    probe = container["livenessProbe"]["httpGet"]
    assert probe["path"] == "/healthz"
    assert resolve_port(container, probe["port"]) == liveness_port
    startup = container.get("startupProbe")
    if startup:
        assert startup["httpGet"]["path"] == "/healthz"
        assert resolve_port(container, startup["httpGet"]["port"]) == liveness_port


def test_metrics_port_is_named_and_served() -> None:
    container = operator_container()
    metrics_port = int(flag(container.get("args", []), "--metrics-port") or 9090)
    assert resolve_port(container, "metrics") == metrics_port
    service = install_one("Service")
    (port,) = [p for p in service["spec"]["ports"] if p["name"] == "metrics"]
    assert resolve_port(container, port["targetPort"]) == metrics_port
    pod_labels = install_one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_deployment_selector_matches_its_pods() -> None:
    spec = install_one("Deployment")["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()


def test_read_only_root_has_a_writable_tmp() -> None:
    tmp = "/tmp"  # noqa: S108 - the pod's own emptyDir, checked here, not used
    pod = install_one("Deployment")["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in operator_container().get("volumeMounts", [])}
    assert tmp in mounts
    assert any(v["name"] == mounts[tmp] and "emptyDir" in v for v in pod["volumes"])


def test_deployment_args_parse_with_the_real_cli() -> None:
    from rotator.cli import build_parser

    args = build_parser().parse_args(["run", *operator_container().get("args", [])])
    assert args.command == "run"
    assert not args.namespace, "the install is cluster-wide (its RBAC is a ClusterRole)"


def test_image_is_set_through_kustomize() -> None:
    image = operator_container()["image"]
    (kustomization,) = docs(MANIFESTS / "base" / "kustomization.yaml")
    assert image in {entry["name"] for entry in kustomization["images"]}


# --- monitoring ------------------------------------------------------------------------------

ALERTS = {
    "RotatorRotationFailed",
    "RotatorCredentialTooOld",
    "RotatorRotationStuck",
    "RotatorRotationOverdue",
    "RotatorLeaseExpiringBeforeRotation",
    "RotatorWatchFailing",
    "RotatorDown",
}


def alert_rules() -> list[Obj]:
    rule = one("PrometheusRule", "monitoring/")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    return [r for group in rule["spec"]["groups"] for r in group["rules"] if "alert" in r]


def test_prometheus_rule_has_the_alerts() -> None:
    found = alert_rules()
    assert {r["alert"] for r in found} == ALERTS
    for rule in found:
        assert rule["expr"].strip()
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]


def test_alerts_name_only_exported_metrics() -> None:
    from rotator.metrics import Metrics

    exported: set[str] = set()
    for family in Metrics().registry.collect():
        suffixes = {
            "counter": ["_total"],
            "histogram": ["_bucket", "_sum", "_count"],
        }.get(family.type, [""])
        exported |= {family.name + s for s in suffixes}
    for rule in alert_rules():
        for name in re.findall(r"\brotator_[a-z_]+\b", rule["expr"]):
            assert name in exported, f"{rule['alert']} uses {name}, which rotator.metrics does not export"


def test_service_monitor_scrapes_the_metrics_port_as_job_rotator() -> None:
    monitor = one("ServiceMonitor", "monitoring/")
    service = install_one("Service")
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    # RotatorDown selects up{job="rotator"}: the job label comes from this Service label.
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "rotator"


# --- examples --------------------------------------------------------------------------------


def example_policies() -> list[Obj]:
    return objects("RotationPolicy", "examples/")


def example_stores() -> list[Obj]:
    return [d for kind in STORE_KINDS for d in objects(kind, "examples/")]


def example_objects() -> list[Obj]:
    return [d for p, d in all_objects() if rel(p).startswith("examples/")]


def find(among: list[Obj], kind: str, name: str, namespace: str | None = None) -> Obj | None:
    for obj in among:
        meta = obj["metadata"]
        if (obj["kind"], meta["name"], meta.get("namespace")) == (kind, name, namespace):
            return obj
    return None


def _key(obj: Obj) -> tuple[str, str | None, str]:
    return obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]


def referenced_store(policy: Obj, among: list[Obj]) -> Obj:
    """The store object a policy's storeRef names (kind defaults to RotationStore, which lives in
    the policy's namespace; a ClusterRotationStore has none)."""
    ref = policy["spec"]["storeRef"]
    kind = ref.get("kind", "RotationStore")
    namespace = policy["metadata"]["namespace"] if kind == "RotationStore" else None
    store = find(among, kind, ref["name"], namespace)
    assert store is not None, (
        f"policy {policy['metadata']['name']}: {kind} {ref['name']} is not in the examples"
    )
    return store


def credential_refs(store: Obj) -> list[tuple[str, str, list[str]]]:
    """(namespace, name, keys) of every Secret a store reads a static credential from."""
    spec = store["spec"]
    own = store["metadata"].get("namespace")
    found: list[tuple[str, str, list[str]]] = []
    token = ((spec.get("vault") or {}).get("auth") or {}).get("tokenSecretRef")
    if token:
        found.append((token.get("namespace", own), token["name"], [token.get("key", "token")]))
    keys = ((spec.get("awsSecretsManager") or {}).get("auth") or {}).get("accessKeySecretRef")
    if keys:
        names = [
            keys.get("accessKeyIdKey", "AWS_ACCESS_KEY_ID"),
            keys.get("secretAccessKeyKey", "AWS_SECRET_ACCESS_KEY"),
        ]
        found.append((keys.get("namespace", own), keys["name"], names))
    return found


def test_examples_cover_both_store_kinds_backends_and_auth_methods() -> None:
    stores = example_stores()
    assert {s["kind"] for s in stores} == set(STORE_KINDS)
    backends = {backend for s in stores for backend in ("vault", "awsSecretsManager") if backend in s["spec"]}
    assert backends == {"vault", "awsSecretsManager"}
    auths = {
        method
        for s in stores
        for backend in s["spec"].values()
        if isinstance(backend, dict)
        for method in (backend.get("auth") or {})
    }
    assert {"tokenSecretRef", "kubernetes", "webIdentity"} <= auths
    (cluster,) = objects("ClusterRotationStore", "examples/")
    assert cluster["spec"]["vault"]["auth"]["kubernetes"]["role"] == "rotator-{namespace}"
    assert "selector" in cluster["spec"]["namespaces"]
    assert "{namespace}" in cluster["spec"]["pathPrefix"]


def test_no_example_policy_carries_a_connection() -> None:
    for policy in example_policies():
        assert "store" not in policy["spec"], "connections live in stores (issue 7)"
        assert set(policy["spec"]) >= {"storeRef", "path"}


@pytest.mark.parametrize("policy", example_policies(), ids=lambda p: p["metadata"]["name"])
def test_example_policy_parses_with_the_models(policy: Obj) -> None:
    from rotator.models import parse_spec

    parse_spec(policy["spec"])


def _crd_schema(path: Path, obj: Obj) -> Obj:
    for crd in yaml.safe_load_all(path.read_text()):
        if crd and crd["spec"]["names"]["kind"] == obj["kind"]:
            (version,) = [v for v in crd["spec"]["versions"] if v["storage"]]
            assert obj["apiVersion"] == f"{crd['spec']['group']}/{version['name']}"
            assert ("namespace" in obj["metadata"]) == (crd["spec"]["scope"] == "Namespaced")
            schema: Obj = version["schema"]["openAPIV3Schema"]
            return schema
    raise AssertionError(f"no CRD for {obj['kind']} in {path.name}")


@pytest.mark.parametrize("policy", example_policies(), ids=lambda p: p["metadata"]["name"])
def test_example_policy_is_admitted_by_the_crd(policy: Obj) -> None:
    from rotator.sandbox.schema_validation import admit, unknown_fields

    schema = _crd_schema(CRD_PATH, policy)
    assert unknown_fields(schema, policy) == [], "the API server would silently drop these fields"
    _, errors = admit(schema, policy)
    assert errors == []


@pytest.mark.parametrize("store", example_stores(), ids=lambda s: f"{s['kind']}/{s['metadata']['name']}")
def test_example_store_is_admitted_by_the_crd_and_parses_with_the_models(store: Obj) -> None:
    from rotator.models.store import StoreRefKind, parse_store_spec
    from rotator.sandbox.schema_validation import admit, unknown_fields

    schema = _crd_schema(STORE_CRD_PATH, store)
    assert unknown_fields(schema, store) == [], "the API server would silently drop these fields"
    stored, errors = admit(schema, store)
    assert errors == []
    assert parse_store_spec(StoreRefKind(store["kind"]), store["spec"]) == parse_store_spec(
        StoreRefKind(store["kind"]), stored["spec"]
    )


@pytest.mark.parametrize("policy", example_policies(), ids=lambda p: p["metadata"]["name"])
def test_example_policy_references_a_store_of_the_examples_that_allows_it(policy: Obj) -> None:
    """What the operator would do with the example objects: resolve the policy's storeRef against
    the store the examples define, with the labels the examples give its namespace."""
    from rotator.models import parse_spec
    from rotator.tenancy.resolve import resolve

    namespace = policy["metadata"]["namespace"]
    store = referenced_store(policy, example_objects())
    ns = find(example_objects(), "Namespace", namespace)
    assert ns is not None, f"namespace {namespace} is not in the examples"
    labels = ns["metadata"].get("labels") or {}
    resolved = resolve(namespace, parse_spec(policy["spec"]), store, labels)
    assert resolved.path.startswith(resolved.spec.prefix_for(namespace))
    assert namespace in resolved.path.split("/")
    # The other tenant of a shared store gets its own prefix, never this path.
    if store["kind"] == "ClusterRotationStore":
        other = resolve("other-team", parse_spec(policy["spec"]), store, labels)
        assert other.path != resolved.path


@pytest.mark.parametrize("store", example_stores(), ids=lambda s: f"{s['kind']}/{s['metadata']['name']}")
def test_example_store_credentials_and_identities_exist(store: Obj) -> None:
    """A static credential comes from a labelled Secret the examples define; a minted identity
    is a ServiceAccount in every example namespace whose policies use the store."""
    for namespace, name, keys in credential_refs(store):
        secret = find(example_objects(), "Secret", name, namespace)
        assert secret is not None, f"Secret {namespace}/{name} is not in the examples"
        assert secret["metadata"]["labels"][STORE_CREDENTIAL_LABEL] == "true"
        assert set(keys) <= set(secret.get("stringData", {})) | set(secret.get("data", {}))
    for backend in ("vault", "awsSecretsManager"):
        auth = (store["spec"].get(backend) or {}).get("auth") or {}
        identity = auth.get("kubernetes") or auth.get("webIdentity")
        if identity is None:
            continue
        users = [p for p in example_policies() if _key(referenced_store(p, example_objects())) == _key(store)]
        assert users, f"no example policy uses {store['kind']}/{store['metadata']['name']}"
        for policy in users:
            account = identity.get("serviceAccount", "rotator")
            ns = policy["metadata"]["namespace"]
            assert find(example_objects(), "ServiceAccount", account, ns), f"ServiceAccount {ns}/{account}"


def test_every_example_store_is_used_by_an_example_policy() -> None:
    used = {_key(referenced_store(p, example_objects())) for p in example_policies()}
    for store in example_stores():
        assert _key(store) in used, f"{store['kind']}/{store['metadata']['name']} is used by no example"


def test_demo_deployment_consumes_the_vault_example() -> None:
    (vault,) = [p for p in objects("RotationPolicy", "examples/vault-rotationpolicy.yaml")]
    assert referenced_store(vault, example_objects())["spec"]["vault"]["auth"]["tokenSecretRef"]
    secret = vault["spec"]["secret"]
    namespace = vault["metadata"]["namespace"]
    (demo,) = [d for d in objects("Deployment", "examples/") if d["metadata"]["namespace"] == namespace]
    assert {"kind": "Deployment", "name": demo["metadata"]["name"]} in vault["spec"]["restart"]["targets"]
    refs = [
        env["valueFrom"]["secretKeyRef"]
        for c in demo["spec"]["template"]["spec"]["containers"]
        for env in c.get("env", [])
        if "secretKeyRef" in env.get("valueFrom", {})
    ]
    assert {"name": secret["name"], "key": secret.get("key", "password")} in [
        {"name": r["name"], "key": r["key"]} for r in refs
    ]


# --- Dockerfile ------------------------------------------------------------------------------


def test_dockerfile_matches_the_deployment() -> None:
    text = (REPO / "Dockerfile").read_text()
    instructions = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert instructions[0].startswith("FROM python:3.11-slim")
    assert "USER 65532:65532" in instructions
    assert 'ENTRYPOINT ["rotator", "run"]' in instructions
    assert "pip install --no-cache-dir -c constraints.txt ." in text
    exposed = {int(p) for line in instructions if line.startswith("EXPOSE") for p in line.split()[1:]}
    declared = {p["containerPort"] for p in operator_container()["ports"]}
    assert exposed == declared

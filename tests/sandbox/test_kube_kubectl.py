"""kubectl (the real client binary) works against the emulator with only ``--kubeconfig``.

What users type in the sandbox and in docs must work: get, create -f, client-side apply (with
its last-applied annotation round trip), annotate, get -w, rollout restart, delete, and apply of
an invalid custom resource failing with kube-apiserver's 422 message.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from rotator.sandbox.kube_server import KubeServer
from tests.fixtures.kube import wait_until
from tests.sandbox.test_kube_emulator import REPO

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
pytestmark = pytest.mark.skipif(not Path(KUBECTL).exists(), reason="kubectl is not installed")

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations: {team: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: main
          image: nginx:%s
"""

POLICY = """
apiVersion: rotator.dev/v1alpha1
kind: RotationPolicy
metadata: {name: orders-db}
spec:
  secret: {name: orders-db-credentials, key: password}
  credential: {password: {length: 32}}
  storeRef: {name: vault}
  path: %s
  schedule: {interval: 720h}
"""


class Kubectl:
    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig

    def argv(self, *args: str) -> list[str]:
        return [KUBECTL, "--kubeconfig", str(self.kubeconfig), *args]

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(self.argv(*args), input=stdin, capture_output=True, text=True, timeout=30)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    def json(self, *args: str) -> dict[str, object]:
        data = json.loads(self.run(*args, "-o", "json").stdout)
        assert isinstance(data, dict)
        return data


@pytest.fixture
def kubectl(kubeconfig: Path) -> Kubectl:
    return Kubectl(kubeconfig)


def test_get_lists_namespaces(kubectl: Kubectl) -> None:
    out = kubectl.run("get", "namespaces").stdout
    assert "default" in out
    assert "kube-system" in out


def test_create_from_file_and_get(kubectl: Kubectl) -> None:
    out = kubectl.run("create", "-f", "-", "--validate=false", stdin=DEPLOYMENT % "1").stdout
    assert "deployment.apps/web created" in out
    obj = kubectl.json("get", "deployment", "web")
    assert obj["kind"] == "Deployment"
    assert "web" in kubectl.run("get", "deploy").stdout


def test_apply_round_trips_the_last_applied_annotation(kubectl: Kubectl) -> None:
    assert "created" in kubectl.run("apply", "-f", "-", stdin=DEPLOYMENT % "1").stdout
    assert "configured" in kubectl.run("apply", "-f", "-", stdin=DEPLOYMENT % "2").stdout
    assert "unchanged" in kubectl.run("apply", "-f", "-", stdin=DEPLOYMENT % "2").stdout
    obj = kubectl.json("get", "deployment", "web")
    metadata = obj["metadata"]
    assert isinstance(metadata, dict)
    last = json.loads(metadata["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"
    spec = obj["spec"]
    assert isinstance(spec, dict)
    assert spec["template"]["spec"]["containers"] == [{"name": "main", "image": "nginx:2"}]


def test_annotate(kubectl: Kubectl) -> None:
    kubectl.run("apply", "-f", "-", stdin=DEPLOYMENT % "1")
    kubectl.run("annotate", "deployment", "web", "rotator.dev/force-rotate=1")
    metadata = kubectl.json("get", "deployment", "web")["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["annotations"]["rotator.dev/force-rotate"] == "1"
    assert metadata["annotations"]["team"] == "shop"


def test_get_watch_sees_a_new_object(kubectl: Kubectl, kube_server: KubeServer) -> None:
    watcher = subprocess.Popen(
        kubectl.argv("get", "secrets", "-w", "-o", "name"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.5)  # let the watch start
        kubectl.run("create", "-f", "-", stdin="apiVersion: v1\nkind: Secret\nmetadata: {name: watched}\n")
        assert watcher.stdout is not None
        line = watcher.stdout.readline()
        assert line.strip() == "secret/watched"
    finally:
        watcher.terminate()
        watcher.communicate(timeout=10)
    wait_until(
        lambda: kube_server.call(lambda emulator: emulator.store.open_watches) == 0, what="the watch to close"
    )


def test_rollout_restart_patches_the_pod_template(kubectl: Kubectl, kube_server: KubeServer) -> None:
    kubectl.run("apply", "-f", "-", stdin=DEPLOYMENT % "1")
    before = {p.name for p in kube_server.workload_pods("Deployment", "default", "web")}
    assert "restarted" in kubectl.run("rollout", "restart", "deployment/web").stdout
    spec = kubectl.json("get", "deployment", "web")["spec"]
    assert isinstance(spec, dict)
    assert "kubectl.kubernetes.io/restartedAt" in spec["template"]["metadata"]["annotations"]
    kubectl.run("rollout", "status", "deployment/web", "--timeout=20s")
    after = {p.name for p in kube_server.workload_pods("Deployment", "default", "web")}
    assert len(after) == 2
    assert not (after & before)


def test_delete(kubectl: Kubectl) -> None:
    kubectl.run("apply", "-f", "-", stdin=DEPLOYMENT % "1")
    assert 'deployment.apps "web" deleted' in kubectl.run("delete", "deployment", "web").stdout
    assert "NotFound" in kubectl.run("get", "deployment", "web", check=False).stderr


def test_apply_of_an_invalid_custom_resource_fails_with_422(kubectl: Kubectl) -> None:
    kubectl.run("apply", "-f", str(REPO / "crds" / "rotationpolicies.rotator.dev.yaml"))
    assert "created" in kubectl.run("apply", "-f", "-", stdin=POLICY % "orders-db").stdout
    assert "orders-db" in kubectl.run("get", "rp").stdout
    result = kubectl.run(
        "apply", "-f", "-", stdin=(POLICY % "../sys").replace("orders-db}", "broken}"), check=False
    )
    assert result.returncode != 0
    # kubectl rebuilds the text from the Status' details, exactly as for a real 422.
    assert result.stderr.startswith('The RotationPolicy "broken" is invalid: spec.path: '), result.stderr


# ------------------------------------------------------------------ server-side printing


def _columns(header: str) -> list[str]:
    """A kubectl table header's column names ("LAST ROTATION" is one)."""
    return [name.strip() for name in header.split("  ") if name.strip()]


def test_get_rp_prints_the_crds_printer_columns(kubectl: Kubectl, kube_server: KubeServer) -> None:
    kubectl.run("apply", "-f", str(REPO / "crds" / "rotationpolicies.rotator.dev.yaml"))
    kubectl.run("apply", "-f", "-", stdin=POLICY % "orders-db")
    status = {
        "storeKind": "Vault",
        "phase": "Idle",
        "currentVersion": "7",
        "lastRotationTime": "2020-01-01T00:00:00Z",
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Rotated",
                "message": "",
                "lastTransitionTime": "2020-01-01T00:00:00Z",
            }
        ],
    }
    kubectl.run(
        "patch",
        "rp",
        "orders-db",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
    header, row = kubectl.run("get", "rp", "-A").stdout.splitlines()
    assert _columns(header) == [
        "NAMESPACE", "NAME", "STORE", "PHASE", "CURRENT", "LAST ROTATION", "NEXT", "READY", "AGE"
    ]  # fmt: skip
    cells = row.split()
    assert cells[:5] == ["default", "orders-db", "Vault", "Idle", "7"], row
    assert re.fullmatch(r"\d+y(\d+d)?", cells[5]), row  # a date column is an age: years since 2020
    assert cells[6] == "True", row  # NEXT is null: kubectl prints nothing there
    assert re.fullmatch(r"\d+s", cells[7]), row


def test_get_builtin_kinds_prints_their_columns(kubectl: Kubectl) -> None:
    kubectl.run("apply", "-f", "-", stdin=DEPLOYMENT % "1")
    header = kubectl.run("get", "deployment", "web").stdout.splitlines()[0]
    assert _columns(header) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    wide = kubectl.run("get", "deployment", "web", "-o", "wide").stdout.splitlines()
    assert _columns(wide[0])[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1].split()[-3:] == ["main", "nginx:1", "app=web"]
    assert _columns(kubectl.run("get", "ns", "default").stdout.splitlines()[0]) == ["NAME", "STATUS", "AGE"]


def test_an_unknown_include_object_is_a_bad_request(kube_server: KubeServer) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"{kube_server.url}/api/v1/namespaces?includeObject=Everything",
        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 400
    assert "unrecognized includeObject value" in json.loads(refused.value.read())["message"]


# ------------------------------------------------------------- protobuf request bodies


def test_create_secret_generic_sends_protobuf_and_works(kubectl: Kubectl) -> None:
    out = kubectl.run("create", "secret", "generic", "x", "--from-literal=a=b", "--from-literal=c=d").stdout
    assert out.strip() == "secret/x created"
    secret = kubectl.json("get", "secret", "x")
    assert secret["data"] == {"a": "Yg==", "c": "ZA=="}
    assert secret["type"] == "Opaque"
    header, row = kubectl.run("get", "secret", "x").stdout.splitlines()
    assert _columns(header) == ["NAME", "TYPE", "DATA", "AGE"]
    assert row.split()[:3] == ["x", "Opaque", "2"]


def test_other_typed_creates_work(kubectl: Kubectl) -> None:
    assert "namespace/team created" in kubectl.run("create", "namespace", "team").stdout
    kubectl.run("create", "configmap", "settings", "-n", "team", "--from-literal=mode=fast")
    assert kubectl.json("get", "configmap", "settings", "-n", "team")["data"] == {"mode": "fast"}
    kubectl.run("create", "serviceaccount", "robot", "-n", "team")
    token = kubectl.run("create", "token", "robot", "-n", "team", "--audience=vault").stdout.strip()
    assert token.count(".") == 2  # a JWT, minted by the emulator's TokenRequest
    kubectl.run(
        "create", "secret", "docker-registry", "pull", "-n", "team",
        "--docker-server=r.example", "--docker-username=u", "--docker-password=p",
    )  # fmt: skip
    assert kubectl.json("get", "secret", "pull", "-n", "team")["type"] == "kubernetes.io/dockerconfigjson"


def test_a_protobuf_kind_the_emulator_cannot_read_is_refused_with_415_naming_it(kubectl: Kubectl) -> None:
    result = kubectl.run("create", "deployment", "web", "--image=nginx", check=False)
    assert result.returncode != 0
    assert "the body of the request was in an unknown format" in result.stderr
    assert "not Deployment (apps/v1)" in result.stderr
    assert "NotFound" in kubectl.run("get", "deployment", "web", check=False).stderr

"""kubectl (the real client binary) works against the emulator with only ``--kubeconfig``.

What users type in the sandbox and in docs must work: get, create -f, client-side apply (with
its last-applied annotation round trip), annotate, get -w, rollout restart, delete, and apply of
an invalid custom resource failing with kube-apiserver's 422 message.
"""

from __future__ import annotations

import json
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

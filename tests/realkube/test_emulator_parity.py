"""The sandbox's emulator prints what kube-apiserver prints (issue 10, item 5).

The same objects go to both servers with the same kubectl commands; then ``kubectl get`` output
is compared line for line. Only an age differs by the seconds between the two creates, so the
AGE column (the last) is masked; every other cell, and every column's place, must match.
"""

from __future__ import annotations

import datetime
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from rotator.sandbox.kube_server import KubeServer
from tests.fixtures.realkube import kubectl
from tests.realkube.test_control_plane import CRD_FILES, CRD_NAMES
from tests.unit import test_store_crd_table as store_table
from tests.unit.test_crd_table import design_sample

pytestmark = pytest.mark.timeout(120)

LABEL = "rotator.dev/parity"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A sandbox emulator (kubeconfig path) with the CRDs applied by kubectl."""
    server = KubeServer()
    server.start()
    try:
        kubeconfig = server.write_kubeconfig(tmp_path_factory.mktemp("emulator") / "kubeconfig")
        for path in CRD_FILES:
            kubectl(kubeconfig, "apply", "-f", str(path))
        yield kubeconfig
    finally:
        server.stop()


@pytest.fixture(scope="module")
def servers(real_kubeconfig: Path, emulator: Path) -> dict[str, Path]:
    for path in CRD_FILES:
        kubectl(real_kubeconfig, "apply", "-f", str(path))
    for name in CRD_NAMES:
        kubectl(real_kubeconfig, "wait", "--for=condition=Established", "--timeout=30s", f"crd/{name}")
    return {"real": real_kubeconfig, "emulator": emulator}


def _ago(**delta: float) -> str:
    moment = datetime.datetime.now(datetime.UTC) - datetime.timedelta(**delta)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(status: str, reason: str) -> dict[str, Any]:
    return {"type": "Ready", "status": status, "reason": reason, "message": "", "lastTransitionTime": _ago()}


def _on_both(servers: dict[str, Path], *args: str, stdin: str | None = None) -> dict[str, str]:
    return {name: kubectl(kubeconfig, *args, stdin=stdin) for name, kubeconfig in servers.items()}


def _masked(output: str) -> list[str]:
    """The lines, with the last column (AGE: seconds since each server's create) blanked."""
    lines = output.rstrip("\n").splitlines()
    return [re.sub(r"\d+s$", "<age>", line.rstrip()) for line in lines]


def _same(outputs: dict[str, str]) -> list[str]:
    real, emulated = _masked(outputs["real"]), _masked(outputs["emulator"])
    assert emulated == real, "\n".join(
        ["real:", *outputs["real"].splitlines(), "emulator:", outputs["emulator"]]
    )
    return real


@pytest.fixture
def run(servers: dict[str, Path]) -> dict[str, Any]:
    """A fresh namespace on both servers, and the label every object of this test carries."""
    namespace = f"parity-{uuid.uuid4().hex[:6]}"
    manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    _on_both(servers, "apply", "-f", "-", stdin=yaml.safe_dump(manifest))
    return {"namespace": namespace, "label": f"{LABEL}={namespace}"}


def _apply(servers: dict[str, Path], obj: dict[str, Any], status: dict[str, Any] | None, label: str) -> None:
    key, value = label.split("=")
    obj["metadata"].setdefault("labels", {})[key] = value
    _on_both(servers, "apply", "-f", "-", stdin=yaml.safe_dump(obj))
    if status is not None:
        where = ["-n", obj["metadata"]["namespace"]] if "namespace" in obj["metadata"] else []
        patch = json.dumps({"status": status})
        kind = obj["kind"].lower()
        name = obj["metadata"]["name"]
        _on_both(servers, "patch", kind, name, *where, "--subresource=status", "--type=merge", "-p", patch)


def test_get_rp_all_namespaces_prints_the_same_table(servers: dict[str, Path], run: dict[str, Any]) -> None:
    rotated = design_sample()
    rotated["metadata"].update(name="rotated", namespace=run["namespace"])
    status = {
        "storeKind": "Vault",
        "phase": "Idle",
        "currentVersion": "3",
        "lastRotationTime": _ago(days=3),
        "nextRotationTime": _ago(days=-27),  # in the future: kube prints "<invalid>"
        "conditions": [_condition("True", "Rotated")],
    }
    _apply(servers, rotated, status, run["label"])
    fresh = design_sample()
    fresh["metadata"].update(name="fresh", namespace=run["namespace"])
    _apply(servers, fresh, None, run["label"])

    lines = _same(_on_both(servers, "get", "rp", "-A", "-l", run["label"]))
    assert lines[0].split() == [
        "NAMESPACE", "NAME", "STORE", "PHASE", "CURRENT", "LAST", "ROTATION", "NEXT", "READY", "AGE"
    ]  # fmt: skip
    assert lines[2].split() == [
        run["namespace"],
        "rotated",
        "Vault",
        "Idle",
        "3",
        "3d",
        "<invalid>",
        "True",
        "<age>",
    ]
    _same(_on_both(servers, "get", "rp", "-n", run["namespace"], "-o", "wide"))
    _same(_on_both(servers, "get", "rp", "rotated", "-n", run["namespace"]))


def test_get_stores_prints_the_same_table(servers: dict[str, Path], run: dict[str, Any]) -> None:
    store = store_table.vault_token()
    store["metadata"].update(name="vault", namespace=run["namespace"])
    _apply(servers, store, {"conditions": [_condition("False", "LoginFailed")]}, run["label"])
    cluster = store_table.cluster_names()
    cluster["metadata"]["name"] = f"shared-{run['namespace']}"
    _apply(servers, cluster, None, run["label"])

    lines = _same(_on_both(servers, "get", "rstore", "-A", "-l", run["label"]))
    assert lines[1].split()[:5] == [run["namespace"], "vault", "{namespace}/", "False", "LoginFailed"]
    # A list in a string column is printed as compact JSON, by both.
    lines = _same(_on_both(servers, "get", "crstore", "-l", run["label"]))
    assert '["shop","billing"]' in lines[1]


def test_get_secrets_and_namespaces_print_the_same_table(
    servers: dict[str, Path], run: dict[str, Any]
) -> None:
    namespace = run["namespace"]
    # `kubectl create secret` sends protobuf: the emulator must read it as kube-apiserver does.
    _on_both(servers, "create", "secret", "generic", "creds", "-n", namespace, "--from-literal=a=b")
    _on_both(servers, "create", "configmap", "settings", "-n", namespace, "--from-literal=a=b")
    _same(_on_both(servers, "get", "secret", "creds", "-n", namespace))
    _same(_on_both(servers, "get", "configmap", "settings", "-n", namespace))
    _same(_on_both(servers, "get", "namespace", namespace))


def test_a_label_selected_watch_reports_objects_leaving_and_entering_alike(
    servers: dict[str, Path], run: dict[str, Any]
) -> None:
    """What rotator's watch cache must cope with (rotator.kube.WatchCache.gone): a label removed
    shows as DELETED on a label-selected watch, a label added as ADDED, on both servers."""
    namespace = run["namespace"]
    seen: dict[str, list[tuple[str, str | None]]] = {}
    for name, kubeconfig in servers.items():
        core = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(str(kubeconfig)))
        body = {"metadata": {"name": "watched", "labels": {"rotator.dev/parity-watch": "yes"}}}
        created = core.create_namespaced_secret(namespace, body)
        since = created.metadata.resource_version
        for labels in ({"other": "1"}, {"rotator.dev/parity-watch": None}, {"other": "2"}):
            core.patch_namespaced_secret("watched", namespace, {"metadata": {"labels": labels}})
        core.patch_namespaced_secret("watched", namespace, {"metadata": body["metadata"]})
        stream = kubernetes.watch.Watch().stream(
            core.list_namespaced_secret,
            namespace,
            label_selector="rotator.dev/parity-watch=yes",
            resource_version=since,
            timeout_seconds=2,
        )
        seen[name] = [
            (event["type"], (event["object"].metadata.labels or {}).get("rotator.dev/parity-watch"))
            for event in stream
        ]
    # leaving the selector is DELETED showing the object as it was, label included
    assert seen["real"] == [("MODIFIED", "yes"), ("DELETED", "yes"), ("ADDED", "yes")]
    assert seen["emulator"] == seen["real"]

"""The consumer made for real kubelets (kind, through e2e/run.sh): its readiness probe, run by
the shell against the downward-API files a kubelet writes, and the pod spec it gets. kwok,
the control plane of the suite, does not run probes, so the probe's logic is proven here."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from rotator.models.keys import ROTATION_ID
from rotator.sandbox import demo
from rotator.sandbox.cluster_consumers import (
    FAULT_LABEL,
    FAULT_NEVER_READY,
    PODINFO_MOUNT,
    kubelet_consumer,
    readiness_script,
)


def probe(tmp_path: Path, labels: dict[str, str], annotations: dict[str, str]) -> bool:
    """Write the files as the kubelet does (``key="value"`` lines) and run the probe: Ready?"""
    for name, entries in (("labels", labels), ("annotations", annotations)):
        (tmp_path / name).write_text("\n".join(f'{key}="{value}"' for key, value in sorted(entries.items())))
    result = subprocess.run(["sh", "-c", readiness_script(str(tmp_path))], capture_output=True, timeout=10)
    return result.returncode == 0


@pytest.mark.parametrize(
    ("fault", "restarted", "ready"),
    [
        (False, False, True),
        (False, True, True),  # restarted by rotator, nothing wrong
        (True, False, True),  # marked, but a pod from before rotator's restart: spared
        (True, True, False),  # marked and restarted by rotator: never Ready
    ],
)
def test_the_probe_fails_only_a_marked_pod_that_rotator_restarted(
    tmp_path: Path, fault: bool, restarted: bool, ready: bool
) -> None:
    labels = {"app": "demo-app", **({FAULT_LABEL: FAULT_NEVER_READY} if fault else {})}
    annotations = {"kubernetes.io/config.seen": "now", **({ROTATION_ID: "r-1"} if restarted else {})}
    assert probe(tmp_path, labels, annotations) is ready


def test_another_fault_value_or_a_lookalike_annotation_is_no_fault(tmp_path: Path) -> None:
    assert probe(tmp_path, {FAULT_LABEL: "something-else"}, {ROTATION_ID: "r-1"})
    assert probe(tmp_path, {FAULT_LABEL: FAULT_NEVER_READY}, {f"x.{ROTATION_ID}-old": "r-1"})


def test_the_kubelet_consumer_runs_the_image_with_the_probe_and_optional_secret_refs() -> None:
    original = demo.consumer_deployment("shop")
    body = kubelet_consumer(original, "busybox:1.37")
    pod = body["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == "busybox:1.37"
    assert container["readinessProbe"]["exec"]["command"] == ["sh", "-c", readiness_script()]
    assert {"name": "podinfo", "mountPath": PODINFO_MOUNT, "readOnly": True} in container["volumeMounts"]
    fields = {item["fieldRef"]["fieldPath"] for v in pod["volumes"] for item in v["downwardAPI"]["items"]}
    assert fields == {"metadata.labels", "metadata.annotations"}
    # Optional, so the first pods start before rotator first writes the Secret.
    assert all(env["valueFrom"]["secretKeyRef"]["optional"] for env in container["env"])
    # The input is left as it was (seeding builds it once per test).
    assert original["spec"]["template"]["spec"]["containers"][0]["image"] != "busybox:1.37"

"""The "kubeconfig" backend, the one e2e/run.sh runs tests/integration/test_rotation.py's
scenarios with on kind, proven here without Docker: pointed at the real control plane by the
admin kubeconfig its fixture writes, as at any cluster.

Everything of that path runs: the install checks, the operator's kubeconfig made from the admin
one with a TokenRequest token asked through the API (no helper of the control-plane fixture),
the consumer hooks over a plain API client, and the consumer made for real kubelets (the
consumer image, the readiness probe of the fault on a downward-API volume, optional Secret
references), which kube-apiserver must admit. What kwok cannot run is the probe itself: it
plays kubelet by its stages, which honour the same label (tests/sandbox/test_cluster_consumers.py
runs the probe's shell against the files a kubelet writes). The scenario is test_rotation.py's
own function, not a copy; one of them, the one that uses every part of the backend, as the
real tier's single worker has little time to spare (the rest run on the same path on kind).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rotator.sandbox.cluster_consumers import PODINFO_MOUNT
from rotator.sandbox.realkube import RealKubeServer
from tests.fixtures.kube_backends import (
    DEFAULT_CONSUMER_IMAGE,
    KUBECONFIG,
    MIN_REAL_PROGRESS_DEADLINE,
    KubeconfigTarget,
)
from tests.fixtures.realkube import Install
from tests.fixtures.rotation import Bench
from tests.integration import test_rotation as scenarios

pytestmark = pytest.mark.parametrize("kube_backend", [KUBECONFIG], indirect=True)


@pytest.fixture(scope="module")
def kubeconfig_target(
    real_kube: RealKubeServer, install: Install, real_kubeconfig: Path
) -> Iterator[KubeconfigTarget]:
    """The control plane as e2e/run.sh hands kind over: an admin kubeconfig, the install done,
    the in-cluster operator scaled to 0. No recorder of its own: the control plane's records the
    pods (kwok starts none unrecorded; a second recorder would race it for each pod)."""
    target = KubeconfigTarget(
        real_kubeconfig,
        consumer_image=DEFAULT_CONSUMER_IMAGE,
        record=False,
        min_progress_deadline=MIN_REAL_PROGRESS_DEADLINE,  # kwok starts pods at once
    )
    try:
        yield target
    finally:
        target.close()


def kubelet_made(bench: Bench) -> None:
    """The consumer really is the one made for kubelets (or the proof would prove less)."""
    [container] = bench.deployment()["spec"]["template"]["spec"]["containers"]
    assert container["image"] == DEFAULT_CONSUMER_IMAGE
    assert container["readinessProbe"]["exec"]["command"][:2] == ["sh", "-c"]
    assert {"name": "podinfo", "mountPath": PODINFO_MOUNT, "readOnly": True} in container["volumeMounts"]


def test_failed_rollout_rolls_back_and_never_revokes_the_old_credential(bench: Bench) -> None:
    """The scenario that uses the whole backend: seeding, the operator on its token, both
    rotations, the fault switched on and off through the hooks, the pods' Secret versions."""
    scenarios.test_failed_rollout_rolls_back_and_never_revokes_the_old_credential(bench)
    kubelet_made(bench)
    # The operator authenticated with the token the backend asked for, not an admin credential.
    kubeconfig = bench.operator.kubeconfig.read_text()
    assert "token:" in kubeconfig
    assert "client-key-data" not in kubeconfig

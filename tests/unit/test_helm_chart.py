"""charts/rotator renders the same objects as the kustomize manifests, linted by a real helm.

Cluster mode equals ``kubectl kustomize manifests/``, namespaced mode (``namespaces={shop}``)
equals ``manifests/namespaced/``, and the monitoring toggles equal ``manifests/monitoring/``,
object by object, after dropping only the labels and annotation Helm's conventions add. The
server-side dry run against a real API server is in tests/realkube/test_helm_chart_real.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rotator.cli import build_parser, leader_election_settings
from rotator.models import LeaderElection
from tests.helm import CHART, documents, helm_binary, helm_template, kustomize, normalised, run

MONITORING = (
    "metrics.serviceMonitor.enabled=true",
    "metrics.prometheusRule.enabled=true",
    "metrics.dashboard.enabled=true",
)
TIMINGS = ("lease_duration", "renew_deadline", "retry_period")
MODES = {
    "cluster": ("manifests", ("createNamespace=true",)),
    "namespaced": ("manifests/namespaced", ("createNamespace=true", "mode=namespaced", "namespaces={shop}")),
}


@pytest.fixture(scope="module")
def helm() -> Path:
    return helm_binary()


@pytest.mark.parametrize("settings", [(), MODES["namespaced"][1], MONITORING])
def test_helm_lint_passes(helm: Path, settings: tuple[str, ...]) -> None:
    flags = [flag for setting in settings for flag in ("--set", setting)]
    out = run(helm, "lint", "--strict", CHART, *flags)
    assert "1 chart(s) linted, 0 chart(s) failed" in out


@pytest.mark.parametrize("mode", MODES)
def test_helm_template_equals_kustomize_object_by_object(helm: Path, mode: str) -> None:
    directory, settings = MODES[mode]
    chart = normalised(documents(helm_template(helm, *settings)))
    manifests = normalised(documents(kustomize(directory)))
    assert sorted(chart) == sorted(manifests), "the same objects"
    for key, obj in manifests.items():
        assert chart[key] == obj, f"{mode}: {key} differs"


def test_the_monitoring_toggles_render_manifests_monitoring(helm: Path) -> None:
    default = {key[1] for key in normalised(documents(helm_template(helm)))}
    assert not default & {"ServiceMonitor", "PrometheusRule", "ConfigMap"}, "off by default"
    rendered = normalised(documents(helm_template(helm, *MONITORING)))
    monitoring = normalised(documents(kustomize("manifests/monitoring")))
    assert monitoring.keys() <= rendered.keys()
    for key, obj in monitoring.items():
        assert rendered[key] == obj, f"{key} differs"


def test_values_shape_the_deployment(helm: Path) -> None:
    objects = normalised(
        documents(
            helm_template(
                helm,
                "replicas=3",
                "resources.limits.memory=1Gi",
                "mode=namespaced",
                "namespaces={a,b}",
                "metrics.service.enabled=false",
                "installCRDs=false",
            )
        )
    )
    deployment = objects["apps/v1", "Deployment", "rotator-system", "rotator"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert deployment["spec"]["replicas"] == 3
    assert container["resources"]["limits"]["memory"] == "1Gi"
    assert [arg for arg in container["args"] if arg.startswith("--namespace")] == [
        "--namespace=a",
        "--namespace=b",
    ]
    roles = sorted(key[2] for key in objects if key[1] == "Role" and key[3] == "rotator")
    assert roles == ["a", "b"], "a Role per watched namespace"
    kinds = {key[1] for key in objects}
    assert "Service" not in kinds
    assert "CustomResourceDefinition" not in kinds
    assert "Namespace" not in kinds, "createNamespace is off by default"


def test_namespaced_mode_without_namespaces_is_refused(helm: Path) -> None:
    with pytest.raises(AssertionError, match="mode=namespaced needs at least one entry in namespaces"):
        helm_template(helm, "mode=namespaced")


def operator_args(*settings: str, helm: Path) -> list[str]:
    objects = normalised(documents(helm_template(helm, *settings)))
    deployment = objects["apps/v1", "Deployment", "rotator-system", "rotator"]
    args: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def test_lease_timings_default_to_rotator_runs_own(helm: Path) -> None:
    """leaderElection.* render as the --leader-election-* flags; by default the values a bare
    ``rotator run`` uses (its flag defaults, which are ``LeaderElection``'s documented ones)."""
    args = operator_args(helm=helm)
    rendered, bare = build_parser().parse_args(["run", *args]), build_parser().parse_args(["run"])
    for timing in TIMINGS:
        flag = f"leader_election_{timing}"
        assert "--" + flag.replace("_", "-") in args
        assert getattr(rendered, flag) == getattr(bare, flag) == getattr(LeaderElection(), timing), flag


def test_lease_timings_are_values(helm: Path) -> None:
    args = operator_args(
        "leaderElection.leaseDuration=30",
        "leaderElection.renewDeadline=20",
        "leaderElection.retryPeriod=2.5",
        helm=helm,
    )
    election = leader_election_settings(build_parser().parse_args(["run", *args]))
    assert (election.lease_duration, election.renew_deadline, election.retry_period) == (30.0, 20.0, 2.5)
    assert election.enabled


REFUSED = "leaderElection needs leaseDuration > renewDeadline > 1.2 x retryPeriod > 0"


@pytest.mark.parametrize(
    "setting",
    ["leaderElection.leaseDuration=10", "leaderElection.renewDeadline=2.4", "leaderElection.retryPeriod=0"],
)
def test_lease_timings_the_operator_would_refuse_are_refused_by_the_chart(helm: Path, setting: str) -> None:
    with pytest.raises(AssertionError, match=REFUSED.replace(".", r"\.")):
        helm_template(helm, setting)

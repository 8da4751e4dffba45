"""charts/rotator renders the same objects as the kustomize manifests, linted by a real helm.

Cluster mode equals ``kubectl kustomize manifests/``, namespaced mode (``namespaces={shop}``)
equals ``manifests/namespaced/``, and the monitoring toggles equal ``manifests/monitoring/``,
object by object, after dropping only the labels and annotation Helm's conventions add. The
server-side dry run against a real API server is in tests/realkube/test_helm_chart_real.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helm import CHART, documents, helm_binary, helm_template, kustomize, normalised, run

MONITORING = (
    "metrics.serviceMonitor.enabled=true",
    "metrics.prometheusRule.enabled=true",
    "metrics.dashboard.enabled=true",
)
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

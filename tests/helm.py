"""The helm binary and the chart/kustomize renderings that tests compare (charts/rotator).

helm is built from its Go module by ``e2e/helm/build.sh`` into a cache outside the checkout
(``make helm``; ``make test`` depends on it). When it is missing: under ``CI=true``, or with
``ROTATOR_BUILD_HELM=1``, it is built here; a failed build fails the test. Otherwise the tests
are skipped, loudly, with the command that builds it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "rotator"
BUILD_SCRIPT = ROOT / "e2e" / "helm" / "build.sh"
RELEASE_NAMESPACE = "rotator-system"

#: Labels and annotations Helm's conventions add; the kustomize manifests have no equivalent.
HELM_LABELS = frozenset(
    {
        "helm.sh/chart",
        "app.kubernetes.io/managed-by",
        "app.kubernetes.io/instance",
        "app.kubernetes.io/version",
    }
)
HELM_ANNOTATIONS = frozenset({"helm.sh/resource-policy"})

Key = tuple[str, str, str, str]  # (apiVersion, kind, namespace, name)


def helm_binary() -> Path:
    in_ci = os.environ.get("CI", "").lower() == "true"
    bin_dir = Path(
        subprocess.run(
            ["bash", str(BUILD_SCRIPT), "--print-dir"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    helm = bin_dir / "helm"
    if helm.is_file():
        return helm
    if in_ci or os.environ.get("ROTATOR_BUILD_HELM") == "1":
        built = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=False)
        if built.returncode != 0 or not helm.is_file():
            pytest.fail(f"helm could not be built with {BUILD_SCRIPT}:\n{built.stdout}{built.stderr}")
        return helm
    pytest.skip(f"HELM NOT BUILT: {helm} missing; build it with `make helm` (or ROTATOR_BUILD_HELM=1)")


def run(*args: str | Path, stdin: str | None = None) -> str:
    result = subprocess.run([str(a) for a in args], input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, args))} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )
    return result.stdout


def helm_template(helm: Path, *settings: str) -> str:
    flags = [flag for setting in settings for flag in ("--set", setting)]
    return run(helm, "template", "rotator", CHART, "--namespace", RELEASE_NAMESPACE, *flags)


def kustomize(directory: str) -> str:
    return run("kubectl", "kustomize", ROOT / directory)


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def normalised(objects: Iterable[Mapping[str, Any]]) -> dict[Key, dict[str, Any]]:
    """Objects by identity, without what Helm's conventions add (its labels, its keep policy)."""
    out: dict[Key, dict[str, Any]] = {}
    for obj in objects:
        plain = yaml.safe_load(yaml.safe_dump(dict(obj)))  # a deep copy
        meta = plain.setdefault("metadata", {})
        for field, helm_only in (("labels", HELM_LABELS), ("annotations", HELM_ANNOTATIONS)):
            kept = {k: v for k, v in (meta.get(field) or {}).items() if k not in helm_only}
            if kept:
                meta[field] = kept
            else:
                meta.pop(field, None)
        key = (plain["apiVersion"], plain["kind"], meta.get("namespace", ""), meta["name"])
        assert key not in out, f"rendered twice: {key}"
        out[key] = plain
    return out

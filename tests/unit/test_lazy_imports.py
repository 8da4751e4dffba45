"""The operator's start imports neither boto3, botocore nor psycopg: a Vault-only deployment never
pays for them (together ~16 MiB of RSS, issue 11's memory row). They load where an AWS store or target,
or a PostgreSQL login, is first used.

Nor does it need the official ``kubernetes`` client (~35 MiB: every generated model): rotator
talks to the API through rotator.kube_connection, and the image does not install the client.
Kopf imports it whenever it is installed (its optional model support), and the test environment
installs it for the tests that use it, so the probe runs once as the image does, without it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Without the official client, as in the image: an import of it fails as if not installed.
HIDE_KUBERNETES = """
import sys

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name == "kubernetes" or name.startswith("kubernetes."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
"""

# What `rotator run` imports before Kopf starts (rotator.cli._run), plus the engine's modules.
PROBE = """
import json, sys
from prometheus_client import start_http_server
from rotator import engine, handlers, logs
from rotator.kube import Kube, WatchCache, load_api_client, watched_object
from rotator.leader import LeaderElector
from rotator.metrics import Metrics
from rotator.models import Settings
from rotator.policy.ratelimit import TokenBucket
from rotator.steps.checkpoints import Checkpoint
from rotator.stores.opener import StoreOpener
from rotator.targets.opener import open_target
from rotator.tenancy.resolver import StoreResolver
print(json.dumps(sorted({name.split(".")[0] for name, module in sys.modules.items() if module is not None})))
"""


def _loaded(prelude: str = "") -> set[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'operator'}{os.pathsep}{ROOT}"}
    out = subprocess.run(
        [sys.executable, "-c", prelude + PROBE], env=env, capture_output=True, text=True, check=True
    )
    return set(json.loads(out.stdout))


def test_the_operator_starts_without_boto3_botocore_or_psycopg() -> None:
    loaded = _loaded()
    assert "hvac" in loaded  # the probe did import the stores
    assert not loaded & {"boto3", "botocore", "psycopg"}


def test_the_operator_starts_without_the_official_kubernetes_client() -> None:
    loaded = _loaded(HIDE_KUBERNETES)  # check=True: any import of it would have failed the probe
    assert {"kopf", "hvac"} <= loaded  # the probe did import Kopf and the stores
    assert "kubernetes" not in loaded


def test_the_operator_process_keeps_the_official_client_out_even_where_it_is_installed() -> None:
    """This virtualenv has it (the tests use it): ``rotator run`` still never loads it."""
    assert "kubernetes" in _loaded(), "the probe's environment has the client, and Kopf imports it"
    keep_out = "from rotator.cli import keep_out_the_official_client\nkeep_out_the_official_client()\n"
    loaded = _loaded(keep_out)
    assert {"kopf", "hvac"} <= loaded
    assert "kubernetes" not in loaded


def test_the_official_kubernetes_client_is_not_a_runtime_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = [dep.split(">")[0].split("<")[0].split("=")[0].split("[")[0] for dep in project["dependencies"]]
    assert "kubernetes" not in runtime
    assert "urllib3" not in runtime  # rotator.http1 speaks to the API server; requests' own
    assert any(dep.startswith("kubernetes") for dep in project["optional-dependencies"]["dev"])

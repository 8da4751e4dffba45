"""The operator's start imports neither boto3 nor psycopg: a Vault-only deployment never pays for
them (together ~16 MiB of RSS, issue 11's memory row). They load where an AWS store or target,
or a PostgreSQL login, is first used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# What `rotator run` imports before Kopf starts (rotator.cli._run), plus the engine's modules.
PROBE = """
import json, sys
from prometheus_client import start_http_server
from rotator import engine, handlers, logs
from rotator.kube import Kube, WatchCache, load_api_client, watched_object
from rotator.leader import LeaderElector
from rotator.metrics import Metrics
from rotator.models import Settings
from rotator.stores.opener import StoreOpener
from rotator.targets.opener import open_target
from rotator.tenancy.resolver import StoreResolver
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_the_operator_starts_without_boto3_or_psycopg() -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'operator'}{os.pathsep}{ROOT}"}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert "hvac" in loaded  # the probe did import the stores
    assert not loaded & {"boto3", "psycopg"}

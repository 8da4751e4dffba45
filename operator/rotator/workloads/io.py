"""Reads and restarts the workloads a policy names: the I/O half of rotator.workloads, over ``Kube``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rotator.kube import Kube, KubeError
from rotator.workloads.kinds import workload_path
from rotator.workloads.restarter import already_restarted, restart_patch


def target_key(kind: str, name: str) -> str:
    return f"{kind}/{name}"


def read_workload(kube: Kube, namespace: str, kind: str, name: str) -> Mapping[str, Any] | None:
    return kube.get(workload_path(kind, namespace, name))


def authorize_restart(
    kube: Kube, namespace: str, kind: str, name: str, restart_id: str, now: datetime
) -> None:
    """A server-side dry run of :func:`restart`'s patch: KubeForbidden when rotator may not patch
    the workload, nothing changed either way. A missing workload is left to the restart step."""
    try:
        kube.merge_patch(workload_path(kind, namespace, name), restart_patch(restart_id, now), dry_run=True)
    except KubeError as exc:
        if exc.status != 404:
            raise


def restart(
    kube: Kube, namespace: str, kind: str, name: str, restart_id: str, now: datetime
) -> Mapping[str, Any] | None:
    """Patch the pod template unless it already carries this restart id; the workload as patched
    (the API's answer: no read-back needed) when it patched, None when it was already restarted.

    A merge patch touches only our two annotations, so it cannot clobber a concurrent edit and
    needs no resourceVersion; re-reading first is what makes a resumed rotation skip the target.
    """
    workload = read_workload(kube, namespace, kind, name)
    if workload is None:
        raise LookupError(f"{kind} {namespace}/{name} not found")
    if already_restarted(workload, restart_id):
        return None
    return kube.merge_patch(workload_path(kind, namespace, name), restart_patch(restart_id, now))

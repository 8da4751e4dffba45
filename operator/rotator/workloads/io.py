"""Reads and restarts the workloads a policy names: the I/O half of rotator.workloads, over ``Kube``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from rotator.kube import Kube, KubeError, secret_path
from rotator.models.keys import ROTATION_ID
from rotator.workloads.discovery import workload_secret_names
from rotator.workloads.kinds import KINDS, workload_path
from rotator.workloads.restarter import already_restarted, restart_patch


def target_key(kind: str, name: str) -> str:
    return f"{kind}/{name}"


def read_workload(kube: Kube, namespace: str, kind: str, name: str) -> Mapping[str, Any] | None:
    return kube.get(workload_path(kind, namespace, name))


def list_workloads(kube: Kube, namespace: str) -> dict[str, list[Mapping[str, Any]]]:
    """Every Deployment, StatefulSet and DaemonSet of the namespace, by kind: one list request per
    kind (``restart.auto`` finds consumers from their pod templates; Secrets are never listed)."""
    return {kind: list(kube.list(workload_path(kind, namespace))) for kind in KINDS}


def secret_writers(kube: Kube, namespace: str, names: Iterable[str]) -> dict[str, str]:
    """The rotation id that last wrote each named Secret, for those the watch cache holds.

    Cache only, on purpose: the cache holds exactly the rotator-managed Secrets (the watch is
    label-selected), so this costs no request and never reads a Secret rotator does not manage.
    A Secret the cache does not know yet is left out, which can only cost a second restart."""
    cache = kube.cache
    if cache is None:
        return {}
    writers: dict[str, str] = {}
    for name in names:
        known, secret = cache.lookup(secret_path(namespace, name))
        writer = ((secret or {}).get("metadata", {}).get("annotations") or {}).get(ROTATION_ID)
        if known and isinstance(writer, str) and writer:
            writers[name] = writer
    return writers


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
    kube: Kube,
    namespace: str,
    kind: str,
    name: str,
    restart_id: str,
    now: datetime,
    *,
    secret_name: str | None = None,
) -> Mapping[str, Any] | None:
    """Patch the pod template unless it already carries this restart id (or, with
    ``secret_name``, the Secret this restart id wrote is recorded as read by a later restart:
    see rotator.workloads.restarter); the workload as patched (the API's answer: no read-back
    needed) when it patched, None when it was already restarted.

    A merge patch touches only our annotations, so it cannot clobber a concurrent edit and
    needs no resourceVersion; re-reading first is what makes a resumed rotation skip the target.
    """
    workload = read_workload(kube, namespace, kind, name)
    if workload is None:
        raise LookupError(f"{kind} {namespace}/{name} not found")
    if already_restarted(workload, restart_id, secret_name):
        return None
    record = secret_writers(kube, namespace, workload_secret_names(kind, workload))
    if secret_name is not None and secret_name in workload_secret_names(kind, workload):
        record[secret_name] = restart_id  # this rotation wrote it (sync ran before restart)
    return kube.merge_patch(workload_path(kind, namespace, name), restart_patch(restart_id, now, record))

"""What a kubelet reads when it starts a pod: the Secret versions, recorded on the pod.

A rotation only counts once the consumers run with the new credential. The sandbox makes that
visible on every pod as the annotation ``sandbox.rotator.dev/secret-versions``: for each Secret
the pod consumes, the resourceVersion and ``rotator.dev/version`` it started with. The
emulator's rollout simulator writes it when it creates a pod (rollout.py); on a real control
plane, where kwok plays kubelet, :class:`SecretVersionRecorder` writes it through the API, so
it works against any API server: kwok's pod stages wait for the annotation before they start a
pod (as a kubelet reads the Secret before it starts the containers), so no pod runs unrecorded.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rotator.models.keys import SECRET_VERSION

JSON = dict[str, Any]
Api = Callable[[str, str, JSON | None], JSON]
"""(method, path, body) -> the decoded answer; raises on an HTTP error (its ``status`` attribute
or ``code`` is the HTTP status). PATCH bodies are JSON merge patches."""

logger = logging.getLogger(__name__)

SECRET_VERSIONS_ANNOTATION = "sandbox.rotator.dev/secret-versions"
VERSION_ANNOTATION = SECRET_VERSION

PENDING = "status.phase=Pending"
LIVE_PODS = "status.phase!=Succeeded,status.phase!=Failed"
"""Field selectors for :class:`SecretVersionRecorder`: the pods it looks at."""

POLL_INTERVAL = 0.05
"""Seconds between looks for unrecorded pods: each pod's start waits up to this long."""


@dataclass(frozen=True)
class SecretVersion:
    """Which version of a Secret a pod started with (None when the Secret was absent)."""

    resource_version: str | None
    version: str | None


@dataclass(frozen=True)
class PodInfo:
    """A pod of a workload as a test wants to see it."""

    name: str
    ready: bool
    revision: str
    secret_versions: Mapping[str, SecretVersion]
    node: str | None = None
    #: Logins to the workload's database with the pod's credential, and how many were refused
    #: (emulator pods of workloads annotated ``sandbox.rotator.dev/postgres-login``).
    logins: int = 0
    refused_logins: int = 0


def secret_names(template: Mapping[str, Any]) -> list[str]:
    """Secrets a pod template consumes: env secretKeyRef, envFrom secretRef, secret volumes."""
    spec = template.get("spec") or {}
    names: list[str] = []
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for env in container.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("secretKeyRef") or {}
            names.append(ref.get("name", ""))
        for env_from in container.get("envFrom") or []:
            names.append((env_from.get("secretRef") or {}).get("name", ""))
    for volume in spec.get("volumes") or []:
        names.append((volume.get("secret") or {}).get("secretName", ""))
        for source in (volume.get("projected") or {}).get("sources") or []:
            names.append((source.get("secret") or {}).get("name", ""))
    return sorted({name for name in names if name})


def secret_versions(secrets: Mapping[str, JSON | None]) -> str:
    """The annotation's value: each consumed Secret's resourceVersion and rotator version."""
    versions: dict[str, dict[str, str | None]] = {}
    for name, secret in secrets.items():
        meta = (secret or {}).get("metadata") or {}
        versions[name] = {
            "resourceVersion": meta.get("resourceVersion"),
            "version": (meta.get("annotations") or {}).get(VERSION_ANNOTATION),
        }
    return json.dumps(versions, sort_keys=True)


def recorded(pod: Mapping[str, Any]) -> bool:
    return SECRET_VERSIONS_ANNOTATION in ((pod.get("metadata") or {}).get("annotations") or {})


def pod_info(pod: Mapping[str, Any]) -> PodInfo:
    """A pod as the tests look at it: name, readiness, revision and the Secret versions."""
    meta = pod.get("metadata") or {}
    raw = json.loads((meta.get("annotations") or {}).get(SECRET_VERSIONS_ANNOTATION, "{}"))
    versions = {
        secret: SecretVersion(entry.get("resourceVersion"), entry.get("version"))
        for secret, entry in raw.items()
    }
    labels = meta.get("labels") or {}
    revision = labels.get("pod-template-hash") or labels.get("controller-revision-hash", "")
    conditions = (pod.get("status") or {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return PodInfo(meta.get("name", ""), ready, revision, versions, (pod.get("spec") or {}).get("nodeName"))


def _status_code(exc: Exception) -> int | None:
    for attribute in ("status", "code"):
        value = getattr(exc, attribute, None)
        if isinstance(value, int):
            return value
    return None


class SecretVersionRecorder:
    """Records the Secret versions on every Pending pod that lacks them, from a thread.

    Polls ``/api/v1/pods?fieldSelector=status.phase=Pending`` (nothing to do is one small list);
    a failed request is logged and retried at the next look, so an API server restart or a pod
    deleted meanwhile costs nothing but that look.

    On a cluster with real kubelets (kind), which start a pod without waiting for the record,
    ``field_selector=LIVE_PODS`` also records a pod that turned Running first; its record is then
    the Secret as the recorder read it, an instant after the kubelet did.
    """

    def __init__(self, api: Api, *, interval: float = POLL_INTERVAL, field_selector: str = PENDING) -> None:
        self._api = api
        self._interval = interval
        self._selector = urllib.parse.quote(field_selector)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.recorded = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="secret-version-recorder", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self.record_pending()
            except Exception as exc:  # the next look retries; a test sees unrecorded pods
                logger.debug("recording Secret versions failed: %r", exc)

    def record_pending(self) -> int:
        """Record every unrecorded pod the field selector finds once; returns how many."""
        pods = self._api("GET", f"/api/v1/pods?fieldSelector={self._selector}", None).get("items") or []
        count = 0
        for pod in pods:
            if recorded(pod) or (pod.get("metadata") or {}).get("deletionTimestamp"):
                continue
            self._record(pod)
            count += 1
        self.recorded += count
        return count

    def _record(self, pod: Mapping[str, Any]) -> None:
        meta = pod["metadata"]
        namespace = meta["namespace"]
        secrets: dict[str, JSON | None] = {}
        for name in secret_names({"spec": pod.get("spec") or {}}):
            try:
                secrets[name] = self._api("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}", None)
            except Exception as exc:
                if _status_code(exc) != 404:
                    raise
                secrets[name] = None  # kubelet would wait; the record says "absent"
        patch = {
            "metadata": {
                "resourceVersion": meta["resourceVersion"],  # only the pod that was read
                "annotations": {SECRET_VERSIONS_ANNOTATION: secret_versions(secrets)},
            }
        }
        self._api("PATCH", f"/api/v1/namespaces/{namespace}/pods/{meta['name']}", patch)

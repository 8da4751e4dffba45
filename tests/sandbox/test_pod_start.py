"""SecretVersionRecorder works against any API server: here the emulator (the real control plane
uses it for every pod kwok starts, tests/realkube/test_operator_real.py)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from rotator.sandbox.kube_server import ADMIN_TOKEN, KubeServer
from rotator.sandbox.pod_start import (
    LIVE_PODS,
    SECRET_VERSIONS_ANNOTATION,
    SecretVersion,
    SecretVersionRecorder,
    pod_info,
)
from tests.fixtures.kube import wait_until

JSON = dict[str, Any]


class HttpError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def api_for(server: KubeServer) -> Any:
    def api(method: str, path: str, body: JSON | None) -> JSON:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/merge-patch+json"}
        if method != "PATCH":
            headers["Content-Type"] = "application/json"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(server.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                answer: JSON = json.loads(response.read())
                return answer
        except urllib.error.HTTPError as exc:
            raise HttpError(exc.code) from None

    return api


def pending_pod(api: Any, name: str, secret: str) -> None:
    spec = {
        "containers": [
            {
                "name": "main",
                "image": "app",
                "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": secret}}}],
            }
        ],
        "volumes": [{"name": "v", "secret": {"secretName": "tls"}}],
    }
    api("POST", "/api/v1/namespaces/default/pods", {"metadata": {"name": name}, "spec": spec})
    api("PATCH", f"/api/v1/namespaces/default/pods/{name}/status", {"status": {"phase": "Pending"}})


def annotation(api: Any, name: str) -> JSON | None:
    pod = api("GET", f"/api/v1/namespaces/default/pods/{name}", None)
    raw = (pod["metadata"].get("annotations") or {}).get(SECRET_VERSIONS_ANNOTATION)
    return None if raw is None else dict(json.loads(raw))


def test_a_pending_pod_gets_the_versions_of_the_secrets_it_reads(kube_server: KubeServer) -> None:
    api = api_for(kube_server)
    secret = {"metadata": {"name": "db", "annotations": {"rotator.dev/version": "3"}}, "data": {"p": "eA=="}}
    created = api("POST", "/api/v1/namespaces/default/secrets", secret)
    pending_pod(api, "web", "db")
    recorder = SecretVersionRecorder(api)

    assert recorder.record_pending() == 1
    assert annotation(api, "web") == {
        "db": {"resourceVersion": created["metadata"]["resourceVersion"], "version": "3"},
        "tls": {"resourceVersion": None, "version": None},  # absent when the pod started
    }
    assert recorder.record_pending() == 0  # recorded once: a later Secret change is not a restart
    info = pod_info(api("GET", "/api/v1/namespaces/default/pods/web", None))
    assert info.name == "web"
    assert not info.ready
    assert info.secret_versions["db"] == SecretVersion(created["metadata"]["resourceVersion"], "3")


def test_the_thread_records_new_pods_until_stopped(kube_server: KubeServer) -> None:
    api = api_for(kube_server)
    recorder = SecretVersionRecorder(api, interval=0.01)
    recorder.start()
    try:
        pending_pod(api, "late", "missing")
        wait_until(lambda: annotation(api, "late") is not None, what="the pod to be recorded")
    finally:
        recorder.stop()
    assert recorder.recorded == 1
    pending_pod(api, "after-stop", "missing")
    assert annotation(api, "after-stop") is None


def test_with_live_pods_a_pod_a_kubelet_started_first_is_recorded_too(kube_server: KubeServer) -> None:
    """On kind the kubelet does not wait for the record: a pod may be Running before the
    recorder looks. LIVE_PODS records it; the default (Pending) would miss it for good."""
    api = api_for(kube_server)
    for name, phase in (("running", "Running"), ("done", "Succeeded"), ("waiting", "Pending")):
        pending_pod(api, name, "db")
        api("PATCH", f"/api/v1/namespaces/default/pods/{name}/status", {"status": {"phase": phase}})

    assert SecretVersionRecorder(api).record_pending() == 1  # the Pending one only
    assert annotation(api, "running") is None
    assert SecretVersionRecorder(api, field_selector=LIVE_PODS).record_pending() == 1
    assert annotation(api, "running") == {
        "db": {"resourceVersion": None, "version": None},
        "tls": {"resourceVersion": None, "version": None},
    }
    assert annotation(api, "done") is None, "a finished pod runs nothing to record"


def test_errors_other_than_not_found_propagate(kube_server: KubeServer) -> None:
    api = api_for(kube_server)
    pending_pod(api, "web", "db")

    def failing(method: str, path: str, body: JSON | None) -> JSON:
        if "/secrets/" in path:
            raise HttpError(500)
        result: JSON = api(method, path, body)
        return result

    with pytest.raises(HttpError):
        SecretVersionRecorder(failing).record_pending()
    assert annotation(api, "web") is None

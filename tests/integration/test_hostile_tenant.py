"""A namespace user trying to make the operator act for them (issue 7), each attack as a test.

A listener the tenant controls records every request it receives: the operator's own credential
(the admin bearer token of the sandbox kubeconfig) and any Secret's value must never reach it.
Everything runs on the real local stack: the Kubernetes emulator, OpenBao, the operator process.
"""

from __future__ import annotations

import base64
import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from rotator.kube import KubeError, policy_path
from rotator.models.keys import STORE_CREDENTIAL_LABEL
from rotator.sandbox import demo
from rotator.sandbox.kube_server import ADMIN_TOKEN
from tests.fixtures.rotation import Bench

EVIL = "evil"
CLUSTER_STORES = "/apis/rotator.dev/v1alpha1/clusterrotationstores"
STOLEN = "team-secret-value-0123456789"


class Listener:
    """An HTTP server a tenant runs, answering like a Vault that refuses everything."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode(errors="replace") if length else ""
                listener.requests.append(f"{self.command} {self.path}\n{self.headers}\n{body}")
                payload = json.dumps({"errors": ["permission denied"]}).encode()
                self.send_response(403)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_LIST = _record

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def seen(self) -> str:
        return "\n".join(self.requests)


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()
        server.thread.join(timeout=5)


def ready(bench: Bench, namespace: str, name: str = demo.POLICY) -> dict[str, str]:
    status = (bench.kube.get_policy(namespace, name) or {}).get("status") or {}
    return next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})


def wait_reason(bench: Bench, namespace: str, reason: str) -> dict[str, str]:
    bench.wait(lambda o: ready(bench, namespace).get("reason") == reason, 30, f"{namespace}: {reason}")
    return ready(bench, namespace)


def tenant(bench: Bench, namespace: str) -> None:
    demo.create(bench.kube, "/api/v1/namespaces", demo.namespace(namespace))
    accounts = f"/api/v1/namespaces/{namespace}/serviceaccounts"
    demo.create(bench.kube, accounts, demo.service_account(namespace))


def secret(namespace: str, name: str, value: str, *, opted_in: bool) -> dict[str, Any]:
    labels = {STORE_CREDENTIAL_LABEL: "true"} if opted_in else {}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {"token": base64.b64encode(value.encode()).decode()},
    }


def store(namespace: str, name: str, vault: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "rotator.dev/v1alpha1",
        "kind": "RotationStore",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"vault": vault},
    }


def policy(
    namespace: str, store_name: str, *, kind: str = "RotationStore", path: str = "db"
) -> dict[str, Any]:
    body = demo.rotation_policy(namespace, deployment=None, path=path, store=store_name)
    body["spec"]["storeRef"] = {"kind": kind, "name": store_name}
    return body


def assert_nothing_leaked(listener: Listener) -> None:
    seen = listener.seen()
    assert ADMIN_TOKEN not in seen, "the operator's own identity reached a tenant's listener"
    assert STOLEN not in seen, "a Secret's value reached a tenant's listener"


def test_a_policy_cannot_name_an_address(bench: Bench, listener: Listener) -> None:
    bench.seed(create_policy=False, deployment=False)
    body = bench.policy_body(deployment=False)
    del body["spec"]["storeRef"]
    body["spec"]["store"] = {"vault": {"address": listener.address, "auth": {"kubernetes": {"role": "x"}}}}
    with pytest.raises(KubeError) as refused:
        bench.kube.create(policy_path("shop"), body)
    assert refused.value.status == 422
    assert "spec.storeRef" in str(refused.value)
    assert listener.requests == []


def test_a_tenants_own_store_logs_in_only_as_the_tenant(bench: Bench, listener: Listener) -> None:
    bench.seed(create_policy=False, deployment=False)
    tenant(bench, EVIL)
    vault = {"address": listener.address, "auth": {"kubernetes": {"role": "anything"}}}
    bench.kube.create(demo.store_collection(EVIL), store(EVIL, "mine", vault))
    bench.kube.create(policy_path(EVIL), policy(EVIL, "mine"))
    bench.operator.start()
    refusal = wait_reason(bench, EVIL, "StoreAuthFailed")
    assert "service account evil/rotator" in refusal["message"]
    logins = [r for r in listener.requests if "/auth/kubernetes/login" in r]
    assert logins, "the listener saw the login attempt"
    jwt = json.loads(logins[0].split("\n\n", 1)[1].strip().splitlines()[-1])["jwt"]
    claims = json.loads(base64.urlsafe_b64decode(jwt.split(".")[1] + "=="))
    assert claims["sub"] == "system:serviceaccount:evil:rotator", "only the tenant's own identity"
    assert claims["aud"] == ["vault"]
    assert_nothing_leaked(listener)


def test_a_store_cannot_read_a_secret_that_did_not_opt_in(bench: Bench, listener: Listener) -> None:
    bench.seed(create_policy=False, deployment=False)
    tenant(bench, EVIL)
    demo.create(
        bench.kube, f"/api/v1/namespaces/{EVIL}/secrets", secret(EVIL, "db-admin", STOLEN, opted_in=False)
    )
    vault = {"address": listener.address, "auth": {"tokenSecretRef": {"name": "db-admin"}}}
    bench.kube.create(demo.store_collection(EVIL), store(EVIL, "mine", vault))
    bench.kube.create(policy_path(EVIL), policy(EVIL, "mine"))
    bench.operator.start()
    refusal = wait_reason(bench, EVIL, "StoreAuthMissing")
    assert f"is not labelled {STORE_CREDENTIAL_LABEL}=true" in refusal["message"]
    assert listener.requests == [], "nothing was sent anywhere"
    assert_nothing_leaked(listener)


def test_another_namespaces_store_and_a_cluster_store_that_does_not_allow_you(bench: Bench) -> None:
    bench.seed(create_policy=False, deployment=False)  # namespace shop has store "vault"
    tenant(bench, EVIL)
    bench.kube.create(policy_path(EVIL), policy(EVIL, "vault"))
    bench.operator.start()
    not_found = wait_reason(bench, EVIL, "StoreNotFound")
    assert "spec.storeRef: RotationStore vault not found in namespace evil" in not_found["message"]

    cluster = {
        "apiVersion": "rotator.dev/v1alpha1",
        "kind": "ClusterRotationStore",
        "metadata": {"name": "shared"},
        "spec": {
            "vault": {
                "address": bench.vault.address,
                "auth": {"tokenSecretRef": {"name": "t", "namespace": "shop"}},
            },
            "namespaces": {"names": ["shop"]},
        },
    }
    bench.kube.create(CLUSTER_STORES, cluster)
    bench.kube.merge_patch(
        policy_path(EVIL, demo.POLICY),
        {"spec": {"storeRef": {"kind": "ClusterRotationStore", "name": "shared"}}},
    )
    refused = wait_reason(bench, EVIL, "StoreNotAllowed")
    assert "does not allow namespace evil" in refused["message"]


def test_path_traversal_is_refused_by_the_api(bench: Bench) -> None:
    bench.seed(create_policy=False, deployment=False)
    for path in ("../team-a/db", "a/../../sys/policy/x", "./db", "a//b"):
        body = bench.policy_body(deployment=False)
        body["spec"]["path"] = path
        with pytest.raises(KubeError) as refused:
            bench.kube.create(policy_path("shop"), body)
        assert refused.value.status == 422, path
        assert "spec.path" in str(refused.value), path


def test_two_tenants_share_a_cluster_store_each_under_its_own_prefix(bench: Bench) -> None:
    root = "tenants-" + bench.vault_path.rsplit("/", 1)[-1]  # OpenBao is shared by the session
    bench.seed(create_policy=False, deployment=False)
    for namespace in ("team-a", "team-b"):
        tenant(bench, namespace)
    demo.create(
        bench.kube,
        "/api/v1/namespaces/shop/secrets",
        secret("shop", "admin-token", bench.vault.root_token, opted_in=True),
    )
    cluster = {
        "apiVersion": "rotator.dev/v1alpha1",
        "kind": "ClusterRotationStore",
        "metadata": {"name": "shared"},
        "spec": {
            "vault": {
                "address": bench.vault.address,
                "auth": {"tokenSecretRef": {"name": "admin-token", "namespace": "shop"}},
            },
            "namespaces": {"names": ["team-a", "team-b"]},
            "pathPrefix": root + "/{namespace}/",
        },
    }
    bench.kube.create(CLUSTER_STORES, cluster)
    for namespace in ("team-a", "team-b"):
        bench.kube.create(policy_path(namespace), policy(namespace, "shared", kind="ClusterRotationStore"))
    # team-b tries to adopt team-a's path by climbing out of its prefix: refused before admission.
    sneaky = policy("team-b", "shared", kind="ClusterRotationStore", path="../team-a/db")
    sneaky["metadata"]["name"] = "sneaky"
    with pytest.raises(KubeError):
        bench.kube.create(policy_path("team-b"), sneaky)
    bench.operator.start()

    def value(namespace: str) -> str | None:
        found = bench.kube.get_secret(namespace, demo.SECRET)
        data = (found or {}).get("data") or {}
        return base64.b64decode(data["password"]).decode() if "password" in data else None

    bench.wait(lambda o: value("team-a") is not None and value("team-b") is not None, 30, "both rotated")
    client = bench.vault_client()
    for namespace in ("team-a", "team-b"):
        stored = client.secrets.kv.v2.read_secret_version(
            path=f"{root}/{namespace}/db", mount_point="secret", raise_on_deleted_version=False
        )
        bench.seen_values.add(str(value(namespace)))
        assert stored["data"]["data"]["value"] == value(namespace)
    assert value("team-a") != value("team-b")


def test_the_operator_allowlist_refuses_other_addresses(bench: Bench, listener: Listener) -> None:
    bench.seed(create_policy=False, deployment=False)
    tenant(bench, EVIL)
    vault = {"address": listener.address, "auth": {"kubernetes": {"role": "anything"}}}
    bench.kube.create(demo.store_collection(EVIL), store(EVIL, "mine", vault))
    bench.kube.create(policy_path(EVIL), policy(EVIL, "mine"))
    bench.operator.extra_args = ("--allowed-store-address", bench.vault.address)
    bench.operator.start()
    refused = wait_reason(bench, EVIL, "StoreNotAllowed")
    assert listener.address in refused["message"]
    assert listener.requests == []

"""A store's Ready condition comes from a real check against the real servers (OpenBao, moto, the
cluster emulator's TokenRequest/TokenReview), with the operator running as a process.

- A namespaced ``RotationStore`` is used by its own namespace only, so its check is that
  namespace's real login: a token minted for the store's service account, Vault's
  ``auth/<mount>/login`` with the role (OpenBao asks the emulator's TokenReview), or STS
  ``AssumeRoleWithWebIdentity`` then ``GetCallerIdentity``. A refusal is ``StoreAuthFailed`` naming
  the role and the service account, never the token.
- A ``ClusterRotationStore`` with a per-namespace identity proves that its endpoint answers and
  says that logins are proven per namespace.
- Whoever writes a store chooses the audiences and the address a token goes to: a store naming
  an audience the Kubernetes API server accepts (the built-in default, or the one the operator
  learned from the API server) is refused before any token is minted for it.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rotator.kube import Kube, KubeError, policy_path
from rotator.kube_connection import KubeConnection
from rotator.models import PermanentError
from rotator.sandbox import demo
from rotator.sandbox.kube_emulator import API_SERVER_AUDIENCE
from rotator.sandbox.kube_server import KubeServer
from rotator.sandbox.moto_server import MotoServer
from rotator.tenancy.identity import KNOWN_API_AUDIENCES, ApiAudiences, mint_token, token_audiences
from tests.fixtures.rotation import Bench
from tests.integration.test_vault_kubernetes_auth import configure_vault, tenant

GROUP = "/apis/rotator.dev/v1alpha1"
ROLE_ARN = "arn:aws:iam::123456789012:role/rotator-{namespace}"
Obj = dict[str, Any]


def vault_kubernetes(address: str, mount: str, **kubernetes: Any) -> Obj:
    return {
        "address": address,
        "auth": {"kubernetes": {"role": "rotator-{namespace}", "mountPath": mount, **kubernetes}},
    }


def namespaced_store(namespace: str, name: str, spec: Obj) -> Obj:
    return {
        "apiVersion": "rotator.dev/v1alpha1",
        "kind": "RotationStore",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def cluster_store(name: str, spec: Obj, namespaces: list[str]) -> Obj:
    return {
        "apiVersion": "rotator.dev/v1alpha1",
        "kind": "ClusterRotationStore",
        "metadata": {"name": name},
        "spec": {**spec, "namespaces": {"names": namespaces}},
    }


def ready_of(obj: Obj | None) -> Obj:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Ready"), {})


def wait_ready(bench: Bench, path: str, predicate: Callable[[Obj], bool], timeout: float = 30) -> Obj:
    """The store's Ready condition once ``predicate`` holds for it."""
    deadline = time.monotonic() + timeout
    condition: Obj = {}
    while time.monotonic() < deadline:
        condition = ready_of(bench.kube.get(path))
        if condition and predicate(condition):
            return condition
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting on {path}; Ready: {condition}")


def store_path(namespace: str, name: str) -> str:
    return f"{GROUP}/namespaces/{namespace}/rotationstores/{name}"


def minted_tokens(bench: Bench) -> dict[str, Any]:
    """Every token the emulator issued by TokenRequest (the admin's is registered by hand)."""
    tokens: dict[str, Any] = bench.kube_server.call(lambda emulator: dict(emulator.tokens))
    return {token: identity for token, identity in tokens.items() if identity.audiences is not None}


def assert_no_token_shown(bench: Bench, *paths: str) -> None:
    """No minted token in the stores' status, any Event or the operator's log."""
    tokens = list(minted_tokens(bench))
    assert tokens, "tokens were minted"
    bench.seen_values.update(tokens)  # the bench's own scan at teardown looks too
    haystack = "".join(repr(bench.kube.get(p)) for p in paths)
    haystack += repr(bench.kube.list("/api/v1/events"))
    haystack += (
        bench.operator.log_path.read_text(errors="replace") if bench.operator.log_path.exists() else ""
    )
    assert not [t for t in tokens if t in haystack], "a minted token was shown"


class Listener:
    """An address a store's author controls: records every request, answers 403 (a Vault-shaped
    refusal, or ``body`` as ``content_type``)."""

    def __init__(
        self,
        body: bytes = json.dumps({"errors": ["permission denied"]}).encode(),
        content_type: str = "application/json",
    ) -> None:
        self.requests: list[str] = []
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                asked = self.rfile.read(length).decode(errors="replace") if length else ""
                listener.requests.append(f"{self.command} {self.path}\n{self.headers}\n{asked}")
                self.send_response(403)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.stop()


# --- namespaced stores: the namespace's own login ------------------------------------------------


def test_a_namespaced_vault_store_is_ready_only_when_its_role_accepts_its_service_account(
    bench: Bench,
) -> None:
    """team-a's role is bound to team-a/rotator: Ready. team-b's role is bound to team-a's
    account, so OpenBao (reviewing the minted token with the emulator) refuses team-b/rotator:
    Ready=False StoreAuthFailed naming the role and the service account, never the token."""
    bench.seed(create_policy=False, deployment=False)
    mount = configure_vault(bench, {"team-a": "team-a", "team-b": "team-a"})
    for namespace in ("team-a", "team-b"):
        tenant(bench, namespace)
        store = namespaced_store(
            namespace, "vault-k8s", {"vault": vault_kubernetes(bench.vault.address, mount)}
        )
        bench.kube.create(demo.store_collection(namespace), store)
    bench.operator.start()

    allowed = wait_ready(bench, store_path("team-a", "vault-k8s"), lambda c: c["status"] != "Unknown")
    assert (allowed["status"], allowed["reason"]) == ("True", "StoreReady"), allowed
    assert "service account team-a/rotator logged in with role 'rotator-team-a'" in allowed["message"]

    refused = wait_ready(bench, store_path("team-b", "vault-k8s"), lambda c: c["status"] != "Unknown")
    assert (refused["status"], refused["reason"]) == ("False", "StoreAuthFailed"), refused
    assert "RotationStore/vault-k8s spec.vault.auth.kubernetes" in refused["message"]
    assert "service account team-b/rotator" in refused["message"]
    assert "role 'rotator-team-b'" in refused["message"]

    # The checks really logged in: each store's service account got a token for audience vault.
    minted = minted_tokens(bench).values()
    for namespace in ("team-a", "team-b"):
        assert any(
            identity.username == f"system:serviceaccount:{namespace}:rotator"
            and identity.audiences == ("vault",)
            for identity in minted
        ), namespace
    assert_no_token_shown(bench, store_path("team-a", "vault-k8s"), store_path("team-b", "vault-k8s"))


def test_a_namespaced_store_whose_service_account_is_missing_says_so(bench: Bench) -> None:
    bench.seed(create_policy=False, deployment=False)
    mount = configure_vault(bench, {"team-a": "team-a"})
    demo.create(bench.kube, "/api/v1/namespaces", demo.namespace("team-a"))  # no service account
    store = vault_kubernetes(bench.vault.address, mount, serviceAccount="absent")
    bench.kube.create(
        demo.store_collection("team-a"), namespaced_store("team-a", "vault-k8s", {"vault": store})
    )
    bench.operator.start()
    ready = wait_ready(bench, store_path("team-a", "vault-k8s"), lambda c: c["status"] != "Unknown")
    assert (ready["status"], ready["reason"]) == ("False", "StoreAuthMissing"), ready
    assert "ServiceAccount team-a/absent" in ready["message"]


def test_a_namespaced_aws_store_assumes_its_role_and_asks_who_it_is(
    bench: Bench, moto_server: MotoServer
) -> None:
    """Web identity on moto: a token for shop/rotator (audience sts.amazonaws.com) traded with
    STS for the namespace's role, then GetCallerIdentity with the credentials it gave."""
    bench.seed(create_policy=False, deployment=False)
    demo.create(bench.kube, "/api/v1/namespaces/shop/serviceaccounts", demo.service_account("shop"))
    aws = {
        "region": "us-east-1",
        "endpoint": moto_server.endpoint_url,
        "auth": {"webIdentity": {"roleArn": ROLE_ARN}},
    }
    bench.kube.create(
        demo.store_collection("shop"), namespaced_store("shop", "aws", {"awsSecretsManager": aws})
    )
    bench.operator.start()
    ready = wait_ready(bench, store_path("shop", "aws"), lambda c: c["status"] != "Unknown")
    assert (ready["status"], ready["reason"]) == ("True", "StoreReady"), ready
    assert (
        "service account shop/rotator assumed arn:aws:iam::123456789012:role/rotator-shop" in ready["message"]
    )
    assert ":assumed-role/rotator-shop/rotator-shop" in ready["message"], "GetCallerIdentity's answer"
    web = [i for i in minted_tokens(bench).values() if i.audiences == ("sts.amazonaws.com",)]
    assert [i.username for i in web] == ["system:serviceaccount:shop:rotator"]
    assert_no_token_shown(bench, store_path("shop", "aws"))


STS_ACCESS_DENIED = b"""<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<Error><Type>Sender</Type><Code>AccessDenied</Code>
<Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message></Error>
<RequestId>c0ffee</RequestId></ErrorResponse>"""


def test_a_namespaced_aws_store_whose_role_refuses_the_service_account_is_not_ready(bench: Bench) -> None:
    """An STS that refuses the web identity (moto never does; this one answers AWS's AccessDenied):
    StoreAuthFailed naming the field, the role and the service account. What reached the store's
    address is a token for the store's audience only, never one the API server accepts."""
    sts = Listener(STS_ACCESS_DENIED, "text/xml")
    try:
        bench.seed(create_policy=False, deployment=False)
        demo.create(bench.kube, "/api/v1/namespaces/shop/serviceaccounts", demo.service_account("shop"))
        aws = {"region": "us-east-1", "endpoint": sts.address, "auth": {"webIdentity": {"roleArn": ROLE_ARN}}}
        store = namespaced_store("shop", "aws", {"awsSecretsManager": aws})
        bench.kube.create(demo.store_collection("shop"), store)
        bench.operator.start()
        ready = wait_ready(bench, store_path("shop", "aws"), lambda c: c["status"] != "Unknown")
        assert (ready["status"], ready["reason"]) == ("False", "StoreAuthFailed"), ready
        assert ready["message"].startswith(
            "RotationStore/aws spec.awsSecretsManager.auth.webIdentity (service account shop/rotator): "
        )
        assert "arn:aws:iam::123456789012:role/rotator-shop refused: AccessDenied" in ready["message"]
        sent = [r for r in sts.requests if "AssumeRoleWithWebIdentity" in r]
        assert sent, "the login was tried"
        tokens = minted_tokens(bench)
        carried = [t for t in tokens if any(t in r for r in sts.requests)]
        assert [tokens[t].audiences for t in carried] == [("sts.amazonaws.com",)] * len(carried) != []
        assert all(tokens[t].username == "system:serviceaccount:shop:rotator" for t in carried)
        assert_no_token_shown(bench, store_path("shop", "aws"))
    finally:
        sts.stop()


# --- cluster stores: the endpoint answers; logins per namespace -----------------------------------


def test_cluster_stores_prove_the_endpoint_and_leave_logins_to_each_namespace(
    bench: Bench, moto_server: MotoServer
) -> None:
    bench.seed(create_policy=False, deployment=False)
    mount = configure_vault(bench, {"team-a": "team-a"})
    aws = {
        "region": "us-east-1",
        "endpoint": moto_server.endpoint_url,
        "auth": {"webIdentity": {"roleArn": ROLE_ARN}},
    }
    bench.kube.create(
        f"{GROUP}/clusterrotationstores",
        cluster_store("vault-k8s", {"vault": vault_kubernetes(bench.vault.address, mount)}, ["team-a"]),
    )
    bench.kube.create(
        f"{GROUP}/clusterrotationstores", cluster_store("aws-web", {"awsSecretsManager": aws}, ["team-a"])
    )
    bench.operator.start()
    vault = wait_ready(bench, f"{GROUP}/clusterrotationstores/vault-k8s", lambda c: c["status"] != "Unknown")
    assert (vault["status"], vault["reason"]) == ("True", "StoreReady"), vault
    assert vault["message"] == (
        f"Vault at {bench.vault.address} reachable; "
        "logins are proven per namespace, at each policy's first login"
    )
    sts = wait_ready(bench, f"{GROUP}/clusterrotationstores/aws-web", lambda c: c["status"] != "Unknown")
    assert (sts["status"], sts["reason"]) == ("True", "StoreReady"), sts
    assert "reachable; web identity logins are proven per namespace" in sts["message"]
    assert minted_tokens(bench) == {}, "no namespace is a cluster store's own: nothing minted"


def test_a_cluster_store_whose_server_does_not_answer_is_unavailable(bench: Bench) -> None:
    bench.seed(create_policy=False, deployment=False)
    closed = Listener()
    address = closed.address
    closed.stop()  # nothing listens there any more
    spec = {"vault": vault_kubernetes(address, "kubernetes")}
    bench.kube.create(f"{GROUP}/clusterrotationstores", cluster_store("gone", spec, ["shop"]))
    bench.operator.start()
    ready = wait_ready(bench, f"{GROUP}/clusterrotationstores/gone", lambda c: c["status"] != "Unknown")
    assert (ready["status"], ready["reason"]) == ("False", "StoreUnavailable"), ready
    assert address in ready["message"]


# --- audiences: never a token the API server would accept ----------------------------------------


def test_a_store_naming_the_api_servers_audience_gets_no_token(bench: Bench, listener: Listener) -> None:
    """The store's author points it at their own listener with the API server's audience: the
    store and the policy using it are refused naming the field, and no token is minted for it."""
    bench.seed(create_policy=False, deployment=False)
    tenant(bench, "evil")
    vault = vault_kubernetes(listener.address, "kubernetes", audiences=["vault", API_SERVER_AUDIENCE])
    bench.kube.create(demo.store_collection("evil"), namespaced_store("evil", "mine", {"vault": vault}))
    body = demo.rotation_policy("evil", deployment=None, path="db", store="mine")
    bench.kube.create(policy_path("evil"), body)
    bench.operator.start()
    ready = wait_ready(bench, store_path("evil", "mine"), lambda c: c["status"] != "Unknown")
    assert (ready["status"], ready["reason"]) == ("False", "StoreInvalid"), ready
    assert ready["message"].startswith("RotationStore/mine spec.vault.auth.kubernetes.audiences: ")
    assert f"{API_SERVER_AUDIENCE} is an audience of the Kubernetes API server" in ready["message"]

    policy = wait_ready(bench, policy_path("evil", demo.POLICY), lambda c: c["status"] != "Unknown")
    assert (policy["status"], policy["reason"]) == ("False", "StoreInvalid"), policy
    assert "spec.vault.auth.kubernetes.audiences" in policy["message"]
    assert listener.requests == [], "refused before the store's address was contacted"
    asked_for = [i.audiences for i in minted_tokens(bench).values()]
    assert all("vault" not in audiences for audiences in asked_for), "no token for the store's audiences"


def test_the_api_servers_audience_is_learned_from_the_api_server(bench: Bench, listener: Listener) -> None:
    """An API server whose audience is not a well-known default: the operator learns it from a
    TokenRequest that names no audience (as it would from its in-pod token) and refuses it."""
    issuer = "https://issuer.cluster-7.example"
    bench.kube_server.call(lambda emulator: setattr(emulator, "api_audiences", (issuer,)))
    bench.seed(create_policy=False, deployment=False)
    tenant(bench, "evil")
    vault = vault_kubernetes(listener.address, "kubernetes", audiences=[issuer])
    bench.kube.create(demo.store_collection("evil"), namespaced_store("evil", "mine", {"vault": vault}))
    bench.operator.start()
    ready = wait_ready(bench, store_path("evil", "mine"), lambda c: c["status"] != "Unknown")
    assert (ready["status"], ready["reason"]) == ("False", "StoreInvalid"), ready
    assert f"{issuer} is an audience of the Kubernetes API server" in ready["message"]
    assert listener.requests == [], "refused before the store's address was contacted"


def test_a_store_with_no_audience_is_refused_by_the_api(bench: Bench) -> None:
    """An empty list would ask the API server for its own audience: the CRD refuses it."""
    bench.seed(create_policy=False, deployment=False)
    vault = vault_kubernetes(bench.vault.address, "kubernetes", audiences=[])
    with pytest.raises(KubeError) as refused:
        bench.kube.create(demo.store_collection("shop"), namespaced_store("shop", "empty", {"vault": vault}))
    assert refused.value.status == 422
    assert "spec.vault.auth.kubernetes.audiences" in str(refused.value)


# --- learning the API server's audiences and minting (no operator) -----------------------------

WHERE = "RotationStore/vault spec.vault.auth.kubernetes.audiences"


@pytest.fixture
def cluster(kube_client: KubeConnection, kube_server: KubeServer) -> Kube:
    kube = Kube(kube_client)
    demo.create(kube, "/api/v1/namespaces", demo.namespace("shop"))
    demo.create(kube, "/api/v1/namespaces/shop/serviceaccounts", demo.service_account("shop"))
    return kube


def test_without_an_in_pod_token_the_api_server_is_asked_once(
    cluster: Kube, kube_server: KubeServer, tmp_path: Path
) -> None:
    issuer = "https://issuer.cluster-7.example"
    kube_server.call(lambda emulator: setattr(emulator, "api_audiences", (issuer,)))
    audiences = ApiAudiences(token_file=tmp_path / "absent")
    assert audiences.learn(cluster, "shop", "rotator") == KNOWN_API_AUDIENCES | {issuer}
    minted = kube_server.call(lambda emulator: len(emulator.tokens))
    assert audiences.learn(cluster, "shop", "rotator") == KNOWN_API_AUDIENCES | {issuer}
    assert kube_server.call(lambda emulator: len(emulator.tokens)) == minted, "learned once"
    with pytest.raises(PermanentError, match="is an audience of the Kubernetes API server"):
        mint_token(cluster, "shop", "rotator", (issuer,), api_audiences=audiences, where=WHERE)


def test_a_token_is_minted_for_the_stores_own_audience(cluster: Kube, tmp_path: Path) -> None:
    audiences = ApiAudiences(token_file=tmp_path / "absent")
    minted = mint_token(cluster, "shop", "rotator", ("vault",), api_audiences=audiences, where=WHERE)
    assert token_audiences(minted.token) == {"vault"}
    assert minted.token not in repr(minted)
    with pytest.raises(PermanentError, match="is an audience of the Kubernetes API server"):
        mint_token(cluster, "shop", "rotator", (API_SERVER_AUDIENCE,), api_audiences=audiences, where=WHERE)
    with pytest.raises(PermanentError, match="must name at least one audience"):
        mint_token(cluster, "shop", "rotator", (), api_audiences=audiences, where=WHERE)

"""A namespace user trying to make the operator act for them (issue 7), each attack as a test.

A listener the tenant controls records every request it receives: the operator's own credential
(the admin bearer token of the sandbox kubeconfig) and any Secret's value must never reach it.
Everything runs on the real local stack: the Kubernetes emulator, OpenBao, the operator process.
"""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import urllib.parse
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import hvac
import hvac.exceptions
import pytest

from rotator.kube import KubeError, policy_path
from rotator.models.keys import STORE_CREDENTIAL_LABEL
from rotator.sandbox import demo
from rotator.sandbox.kube_server import ADMIN_TOKEN
from rotator.sandbox.moto_server import MotoServer
from tests.fixtures.listener import Answer, Listener, Responder
from tests.fixtures.rotation import PUBLIC_KEYS, Bench

EVIL = "evil"
CLUSTER_STORES = "/apis/rotator.dev/v1alpha1/clusterrotationstores"
STOLEN = "team-secret-value-0123456789"


@pytest.fixture
def listener() -> Iterator[Listener]:
    with Listener() as server:
        yield server


def minted_tokens(bench: Bench) -> set[str]:
    """Every token the emulator knows: those it minted (TokenRequest) and the operator's own."""
    return set(bench.kube_server.call(lambda emulator: list(emulator.tokens)))


def secret_data_everywhere(bench: Bench) -> set[str]:
    """Every value any Secret in the cluster holds, but for the keys that are public by design
    (a username, an access key id)."""
    values = set()
    for namespace in bench.kube.list("/api/v1/namespaces"):
        for found in bench.kube.list(f"/api/v1/namespaces/{namespace['metadata']['name']}/secrets"):
            for key, encoded in (found.get("data") or {}).items():
                if key not in PUBLIC_KEYS:
                    values.add(base64.b64decode(encoded).decode(errors="replace"))
    return values


def scan(bench: Bench, values: set[str], metrics: str) -> list[str]:
    """Where any of ``values`` shows in what the operator leaves behind: its log, its metrics,
    the Events, policies and stores (status included) of every namespace, the cluster stores."""
    log = bench.operator.log_path
    haystacks = {"operator log": log.read_text(errors="replace") if log.exists() else "", "metrics": metrics}
    for namespace in (n["metadata"]["name"] for n in bench.kube.list("/api/v1/namespaces")):
        haystacks[f"{namespace} events"] = repr(bench.kube.list(f"/api/v1/namespaces/{namespace}/events"))
        haystacks[f"{namespace} policies"] = repr(bench.kube.list(policy_path(namespace)))
        haystacks[f"{namespace} stores"] = repr(bench.kube.list(demo.store_collection(namespace)))
    haystacks["cluster stores"] = repr(bench.kube.list(CLUSTER_STORES))
    return sorted(
        f"{value[:4]}... appears in the {where}"
        for value in values
        if len(value) >= 8
        for where, text in haystacks.items()
        if value in text
    )


@pytest.fixture(autouse=True)
def scanned(bench: Bench) -> Iterator[set[str]]:
    """After each test, nothing the operator leaves behind shows a secret: no value of any
    Secret (generated credentials, store credentials, the unlabelled ones a tenant tried to
    reach), no minted or operator token, no secret half of the operator's AWS identity, and no
    value the test adds to the set this fixture yields (credentials STS handed out)."""
    extra: set[str] = set()
    yield extra
    metrics = bench.metrics_text()
    bench.operator.stop()
    values = (
        extra
        | secret_data_everywhere(bench)
        | minted_tokens(bench)
        | {OPERATOR_AWS["AWS_SECRET_ACCESS_KEY"], OPERATOR_AWS["AWS_SESSION_TOKEN"], STOLEN}
    )
    leaks = scan(bench, values, metrics)
    assert not leaks, leaks


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


# --- AWS: a tenant's endpoint -----------------------------------------------------------------
AWS_REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/"
#: The operator's own AWS identity (in its environment, as a cluster-wide install might have it):
#: the default credential chain would pick it up if a store's login came back empty.
OPERATOR_AWS = {
    "AWS_ACCESS_KEY_ID": "AKIAOPERATOROWNKEY01",
    "AWS_SECRET_ACCESS_KEY": "operator-own-secret-access-key-0123456789",
    "AWS_SESSION_TOKEN": "operator-own-session-token-0123456789abcdef",
}
TENANT_KEYS = ("AKIATENANTSTATIC0001", "tenant-static-secret-key-0123456789")
OTHER_KEYS = ("AKIASHOPSTATICKEY001", "shop-static-secret-key-0123456789")
STOLEN_KEYS = ("AKIAUNLABELLEDKEY001", STOLEN)
#: STS answers the tenant's listener gives for these roles instead of asking moto: credentials
#: with empty fields, or no credentials at all.
HOLLOW = {
    "hollow-empty": "<Credentials><AccessKeyId></AccessKeyId><SecretAccessKey></SecretAccessKey>"
    "<SessionToken></SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>",
    "hollow-none": "",
}


def tenant_aws(upstream: str) -> Responder:
    """A tenant's AWS endpoint: forwards to moto (a working Secrets Manager and STS, so the
    operator runs whole rotations through it) except for the hollow roles' logins."""
    parts = urllib.parse.urlsplit(upstream)

    def respond(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        form = urllib.parse.parse_qs(body.decode(errors="replace"))
        role = (form.get("RoleArn") or [""])[0].removeprefix(ROLE)
        if form.get("Action") == ["AssumeRoleWithWebIdentity"] and role in HOLLOW:
            xml = (
                '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                f"<AssumeRoleWithWebIdentityResult>{HOLLOW[role]}</AssumeRoleWithWebIdentityResult>"
                "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>"
                "</AssumeRoleWithWebIdentityResponse>"
            )
            return 200, {"Content-Type": "text/xml"}, xml.encode()
        skip = {"host", "content-length", "connection", "transfer-encoding"}
        forwarded = {k: v for k, v in headers.items() if k.lower() not in skip}
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=forwarded)
            response = connection.getresponse()
            payload = response.read()
            return response.status, {"Content-Type": response.getheader("Content-Type") or ""}, payload
        finally:
            connection.close()

    return respond


def keys_secret(namespace: str, name: str, keys: tuple[str, str], *, opted_in: bool) -> dict[str, Any]:
    labels = {STORE_CREDENTIAL_LABEL: "true"} if opted_in else {}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {
            "AWS_ACCESS_KEY_ID": base64.b64encode(keys[0].encode()).decode(),
            "AWS_SECRET_ACCESS_KEY": base64.b64encode(keys[1].encode()).decode(),
        },
    }


def aws_store(namespace: str, name: str, endpoint: str, auth: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "rotator.dev/v1alpha1",
        "kind": "RotationStore",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"awsSecretsManager": {"region": AWS_REGION, "endpoint": endpoint, "auth": auth}},
    }


def named_policy(namespace: str, name: str, store_name: str, path: str) -> dict[str, Any]:
    """A policy of its own (own Secret, own path) on ``store_name``, without restart targets."""
    body = demo.rotation_policy(
        namespace, name=name, secret=f"{name}-credentials", deployment=None, path=path, store=store_name
    )
    body["spec"]["verify"] = {"timeout": "30s"}
    body["spec"]["revoke"] = {"gracePeriod": "1s"}
    return body


def wait_ready(bench: Bench, namespace: str, name: str, reason: str) -> dict[str, str]:
    """The policy's Ready condition once it carries ``reason``."""
    try:
        bench.wait(lambda o: ready(bench, namespace, name).get("reason") == reason, 30, reason)
    except AssertionError:
        raise AssertionError(
            f"{namespace}/{name}: no {reason}; Ready: {ready(bench, namespace, name)}"
        ) from None
    return ready(bench, namespace, name)


def secret_values(bench: Bench, namespace: str, name: str) -> list[str]:
    found = bench.kube.get_secret(namespace, name) or {}
    return [base64.b64decode(v).decode() for v in (found.get("data") or {}).values()]


def sts_credentials(listener: Listener) -> list[dict[str, str]]:
    """Every set of credentials an STS answer through the listener handed out."""
    found = []
    for answer in listener.answers:
        text = answer.decode(errors="replace")
        if "<Credentials>" in text:
            found.append(
                {
                    key: text.split(f"<{key}>", 1)[1].split(f"</{key}>", 1)[0]
                    for key in ("AccessKeyId", "SecretAccessKey", "SessionToken")
                }
            )
    return found


def test_a_tenants_aws_endpoint_sees_only_the_tenants_identity(
    bench: Bench, moto_server: MotoServer, scanned: set[str]
) -> None:
    """A tenant points RotationStores at an AWS endpoint it runs (a proxy to moto that records
    everything and fakes STS answers for two roles) with every auth variant a store has. Only
    the tenant's own identity ever reaches it: the minted token of its service account, the keys
    of its own opted-in Secret, the credentials STS gave that token; never the operator's AWS
    identity or Kubernetes token, never another namespace's or an unlabelled Secret's value."""
    bench.seed(create_policy=False, deployment=False)
    tenant(bench, EVIL)
    run = uuid.uuid4().hex[:8]  # moto is shared by the session
    secrets = (
        (EVIL, keys_secret(EVIL, "tenant-keys", TENANT_KEYS, opted_in=True)),
        (EVIL, keys_secret(EVIL, "stolen-keys", STOLEN_KEYS, opted_in=False)),
        ("shop", keys_secret("shop", "shop-keys", OTHER_KEYS, opted_in=True)),
    )
    for namespace, body in secrets:
        demo.create(bench.kube, f"/api/v1/namespaces/{namespace}/secrets", body)
    auths: dict[str, dict[str, Any]] = {
        "web": {"webIdentity": {"roleArn": ROLE + "tenant"}},
        "keys": {"accessKeySecretRef": {"name": "tenant-keys"}},
        "hollow-empty": {"webIdentity": {"roleArn": ROLE + "hollow-empty"}},
        "hollow-none": {"webIdentity": {"roleArn": ROLE + "hollow-none"}},
        "unlabelled": {"accessKeySecretRef": {"name": "stolen-keys"}},
        "foreign": {"accessKeySecretRef": {"name": "shop-keys", "namespace": "shop"}},
    }
    with Listener(tenant_aws(moto_server.endpoint_url)) as listener:
        for name, auth in auths.items():
            bench.kube.create(demo.store_collection(EVIL), aws_store(EVIL, name, listener.address, auth))
            bench.kube.create(policy_path(EVIL), named_policy(EVIL, name, name, f"{run}/{name}"))
        bench.operator.extra_env = dict(OPERATOR_AWS)
        bench.operator.start()

        # The tenant's own identities work: whole rotations, through its endpoint.
        bench.wait(
            lambda o: all(secret_values(bench, EVIL, f"{n}-credentials") for n in ("web", "keys")),
            60,
            "web and keys rotated",
        )
        login = "spec.awsSecretsManager.auth.webIdentity (service account evil/rotator)"
        for name in ("hollow-empty", "hollow-none"):
            refused = wait_ready(bench, EVIL, name, "StoreAuthFailed")
            assert f"RotationStore/{name} {login}" in refused["message"]
            assert "without credentials" in refused["message"]
        unlabelled = wait_ready(bench, EVIL, "unlabelled", "StoreAuthMissing")
        assert (
            "spec.awsSecretsManager.auth.accessKeySecretRef: Secret evil/stolen-keys" in unlabelled["message"]
        )
        assert f"is not labelled {STORE_CREDENTIAL_LABEL}=true" in unlabelled["message"]
        foreign = wait_ready(bench, EVIL, "foreign", "StoreInvalid")
        assert "spec.awsSecretsManager.auth.accessKeySecretRef.namespace" in foreign["message"]
        bench.operator.stop()

    seen = listener.seen()
    # Who the listener saw: the service account of the tenant's namespace, and no one else.
    logins = [urllib.parse.parse_qs(body.decode()) for body in listener.bodies if body]
    tokens = [f["WebIdentityToken"][0] for f in logins if f.get("Action") == ["AssumeRoleWithWebIdentity"]]
    assert len(tokens) >= 3, "the web identity logins reached the listener (tenant, two hollow roles)"
    for token in tokens:
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        assert claims["sub"] == "system:serviceaccount:evil:rotator", "only the tenant's own identity"
        assert claims["aud"] == ["sts.amazonaws.com"]
    issued = sts_credentials(listener)
    key_ids = {TENANT_KEYS[0]} | {c["AccessKeyId"] for c in issued if c["AccessKeyId"]}
    signed = [r for r in listener.requests if "Credential=" in r]
    assert signed, "the tenant's stores were used"
    used = {r.split("Credential=", 1)[1].split("/", 1)[0] for r in signed}
    assert used <= key_ids, f"requests signed with keys the tenant did not give: {used - key_ids}"
    assert TENANT_KEYS[0] in used, "the static keys of the tenant's own Secret"
    assert used - {TENANT_KEYS[0]}, "the keys STS gave for the tenant's minted token"
    session_tokens = {c["SessionToken"] for c in issued if c["SessionToken"]}
    sent_tokens = {
        line.split(":", 1)[1].strip()
        for r in listener.requests
        for line in r.splitlines()
        if line.lower().startswith("x-amz-security-token:")
    }
    assert sent_tokens, "the web identity's session token was used"
    assert sent_tokens <= session_tokens, "only session tokens STS gave the tenant's minted token"
    for value in (*OPERATOR_AWS.values(), ADMIN_TOKEN, *OTHER_KEYS, *STOLEN_KEYS, bench.vault.root_token):
        assert value not in seen, f"{value[:4]}... reached the tenant's listener"

    generated = {v for n in ("web", "keys") for v in secret_values(bench, EVIL, f"{n}-credentials")}
    assert generated, "the leak scan (fixture scanned) has generated values to look for"
    scanned.update(c["SecretAccessKey"] for c in issued)
    scanned.update(session_tokens)


def test_the_operator_allowlist_refuses_other_addresses(
    bench: Bench, listener: Listener, moto_server: MotoServer
) -> None:
    """``--allowed-store-address`` (Vault URLs and ``aws:REGION:ENDPOINT``): a store elsewhere is
    refused before any request, health check included, with a condition naming the field; a
    store at an allowed AWS address still rotates (the AWS form matches what it should)."""
    bench.seed(create_policy=False, deployment=False)
    tenant(bench, EVIL)
    demo.create(
        bench.kube,
        f"/api/v1/namespaces/{EVIL}/secrets",
        keys_secret(EVIL, "tenant-keys", TENANT_KEYS, opted_in=True),
    )
    vault = {"address": listener.address, "auth": {"kubernetes": {"role": "anything"}}}
    bench.kube.create(demo.store_collection(EVIL), store(EVIL, "mine", vault))
    bench.kube.create(policy_path(EVIL), policy(EVIL, "mine"))
    keys = {"accessKeySecretRef": {"name": "tenant-keys"}}
    run = uuid.uuid4().hex[:8]
    with Listener(tenant_aws(moto_server.endpoint_url)) as aws_listener:
        for name, endpoint in (("aws-mine", aws_listener.address), ("aws-moto", moto_server.endpoint_url)):
            bench.kube.create(demo.store_collection(EVIL), aws_store(EVIL, name, endpoint, keys))
            bench.kube.create(policy_path(EVIL), named_policy(EVIL, name, name, f"{run}/{name}"))
        allowed = (bench.vault.address, f"aws:{AWS_REGION}:{moto_server.endpoint_url}")
        bench.operator.extra_args = tuple(arg for a in allowed for arg in ("--allowed-store-address", a))
        bench.operator.start()
        refused = wait_reason(bench, EVIL, "StoreNotAllowed")
        assert "spec.storeRef: RotationStore mine: address " + listener.address in refused["message"]
        refused = wait_ready(bench, EVIL, "aws-mine", "StoreNotAllowed")
        endpoint = f"aws:{AWS_REGION}:{aws_listener.address}"
        assert f"spec.storeRef: RotationStore aws-mine: address {endpoint}" in refused["message"]
        assert "--allowed-store-address" in refused["message"]
        bench.wait(lambda o: bool(secret_values(bench, EVIL, "aws-moto-credentials")), 60, "aws-moto rotated")
        stores = {s["metadata"]["name"]: s for s in bench.kube.list(demo.store_collection(EVIL))}
        store_ready = next(c for c in stores["aws-mine"]["status"]["conditions"] if c["type"] == "Ready")
        assert store_ready["reason"] == "StoreNotAllowed", "the store's own Ready says so too"
        bench.operator.stop()
    assert listener.requests == []
    assert aws_listener.requests == [], "not even the store's health check"
    assert bench.kube.get_secret(EVIL, "aws-mine-credentials") is None


# --- Vault: reserved mounts, KV v1, dot segments -----------------------------------------------
RESERVED = ("sys", "identity", "cubbyhole", "auth", "token")
STORE_CRD = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/rotationstores.rotator.dev"
POLICY_CRD = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/rotationpolicies.rotator.dev"


def loosen(bench: Bench, crd_path: str, *fields: tuple[str, ...]) -> None:
    """Drop the CRD's pattern and CEL rules on these fields (property names below ``spec``):
    the API then admits what a cluster without CEL (or with an edited CRD) would, and only the
    operator's own checks stand between the tenant and Vault."""
    crd = bench.kube.get(crd_path)
    assert crd is not None
    for version in crd["spec"]["versions"]:
        spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
        for names in fields:
            schema = spec
            for name in names:
                schema = schema["properties"][name]
            schema.pop("pattern", None)
            schema.pop("x-kubernetes-validations", None)
    bench.kube.replace(crd_path, crd)


def vault_state(bench: Bench, kv1_mount: str) -> dict[str, Any]:
    """What a write anywhere in Vault would change, read with the root token."""
    client = bench.vault_client()

    def listed(path: str, method: str = "LIST") -> Any:
        try:
            response = client.adapter.request(method, f"/v1/{path}")
        except hvac.exceptions.InvalidPath:
            return None
        return response.json()["data"] if hasattr(response, "json") else response["data"]

    return {
        "policies": listed("sys/policies/acl"),
        "mounts": sorted(listed("sys/mounts", "GET")),
        "auth methods": sorted(listed("sys/auth", "GET")),
        "tokens": listed("auth/token/accessors"),
        "entities": listed("identity/entity/id"),
        "root token's cubbyhole": listed("cubbyhole"),
        "kv v1 mount": listed(kv1_mount),
        "kv v2 under evil/": listed("secret/metadata/evil"),
        "kv v2 under shop/": listed("secret/metadata/shop"),
    }


def test_reserved_mounts_and_dot_segments_are_refused_by_the_api(bench: Bench) -> None:
    """The CRDs refuse a store on one of Vault's own mounts and any '.' or '..' segment with 422
    Invalid naming the field: nothing reaches the operator."""
    bench.seed(create_policy=False, deployment=False)
    tenant(bench, EVIL)
    token = {"tokenSecretRef": {"name": demo.TOKEN_SECRET}}
    cases: list[tuple[dict[str, Any], str]] = [
        *(
            ({"address": bench.vault.address, "kvMount": mount, "auth": token}, "spec.vault.kvMount")
            for mount in (*RESERVED[:4], "sys/x", "secret/../sys", "./secret", "secret/..")
        ),
    ]
    for vault, field in cases:
        with pytest.raises(KubeError) as refused:
            bench.kube.create(demo.store_collection(EVIL), store(EVIL, "bad", vault))
        assert refused.value.status == 422, vault
        assert field in str(refused.value), vault
    for prefix in ("{namespace}/../shop/", "../{namespace}/", "{namespace}/./"):
        body = store(EVIL, "bad", {"address": bench.vault.address, "auth": token})
        body["spec"]["pathPrefix"] = prefix
        with pytest.raises(KubeError) as refused:
            bench.kube.create(demo.store_collection(EVIL), body)
        assert refused.value.status == 422, prefix
        assert "spec.pathPrefix" in str(refused.value), prefix
    assert bench.kube.list(demo.store_collection(EVIL)) == []


def test_the_operator_refuses_reserved_mounts_kv1_and_dot_segments_itself(bench: Bench) -> None:
    """With the CRD's rules gone (a cluster without CEL, an edited CRD), a tenant holding even
    Vault's root token aims stores and policies at Vault's own mounts, at a KV v1 mount and out
    of its prefix with '..': each policy gets a condition naming the field, nothing is written
    anywhere in Vault (read back with the root token) and no Secret is created."""
    bench.seed(create_policy=False, deployment=False)
    tenant(bench, EVIL)
    loosen(bench, STORE_CRD, ("vault", "kvMount"), ("pathPrefix",))
    loosen(bench, POLICY_CRD, ("path",))
    demo.create(
        bench.kube, f"/api/v1/namespaces/{EVIL}/secrets", demo.token_secret(EVIL, bench.vault.root_token)
    )
    kv1 = "kv1-" + uuid.uuid4().hex[:8]
    client = bench.vault_client()
    client.sys.enable_secrets_engine("kv", path=kv1, options={"version": "1"})
    run = uuid.uuid4().hex[:8]
    stores: dict[str, tuple[dict[str, Any], str]] = {
        **{f"mount-{m}": ({"kvMount": m}, "db") for m in RESERVED},
        "mount-dots": ({"kvMount": "secret/../sys"}, "db"),
        "mount-kv1": ({"kvMount": kv1}, "db"),
        "prefix-dots": ({"pathPrefix": "{namespace}/../shop/"}, f"{run}/db"),
        "path-dots": ({}, f"../shop/{run}/db"),
    }
    expected = {
        **{f"mount-{m}": ("StoreInvalid", "spec.vault.kvMount") for m in RESERVED},
        "mount-dots": ("StoreInvalid", "spec.vault.kvMount"),
        "mount-kv1": ("StoreInvalid", "spec.vault.kvMount"),
        "prefix-dots": ("StoreInvalid", "spec.pathPrefix"),
        "path-dots": ("InvalidSpec", "spec.path"),
    }
    try:
        for name, (overrides, path) in stores.items():
            vault = {
                "address": bench.vault.address,
                "auth": {"tokenSecretRef": {"name": demo.TOKEN_SECRET}},
                **{k: v for k, v in overrides.items() if k != "pathPrefix"},
            }
            body = store(EVIL, name, vault)
            if "pathPrefix" in overrides:
                body["spec"]["pathPrefix"] = overrides["pathPrefix"]
            bench.kube.create(demo.store_collection(EVIL), body)
            bench.kube.create(policy_path(EVIL), named_policy(EVIL, name, name, path))
        before = vault_state(bench, kv1)
        assert f"{kv1}/" in before["mounts"], "the state is read, not a row of Nones"
        assert "root" in before["policies"]["keys"]
        bench.operator.start()
        bench.wait(
            lambda o: all(ready(bench, EVIL, name).get("status") == "False" for name in stores),
            60,
            "every policy refused",
        )
        conditions = {name: ready(bench, EVIL, name) for name in stores}
        got = {
            name: (c["reason"], field)
            for name, c in conditions.items()
            for field in [expected[name][1]]
            if field in c["message"]
        }
        assert got == expected, conditions
        # The KV v1 mount passed every static check: Vault's answer about the mount refused it.
        assert "is not a KV version 2 engine (type 'kv', version 1)" in conditions["mount-kv1"]["message"]
        bench.operator.stop()
        assert vault_state(bench, kv1) == before, "something was written to Vault"
    finally:
        client.sys.disable_secrets_engine(kv1)
    assert [s["metadata"]["name"] for s in bench.kube.list(f"/api/v1/namespaces/{EVIL}/secrets")] == [
        demo.TOKEN_SECRET
    ], "no Secret was created"

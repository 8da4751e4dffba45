"""Vault's Kubernetes auth for real: OpenBao's kubernetes auth method asks the cluster emulator's
TokenReview API about the operator's service-account token, and the operator rotates with the
Vault token it got. A role bound to another service account is refused with a clear condition."""

from __future__ import annotations

import base64
import datetime
import json
import uuid
from pathlib import Path

import hvac
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rotator.sandbox.kube_emulator import TokenIdentity
from tests.fixtures.rotation import Bench

SA_NAMESPACE = "rotator-system"
SA_NAME = "rotator"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def service_account_jwt(uid: str) -> str:
    """JWT-shaped, as kubelet mounts it; Vault reads its claims, TokenReview vouches for it."""
    header = {"alg": "RS256", "kid": "sandbox"}
    claims = {
        "iss": "kubernetes/serviceaccount",
        "sub": f"system:serviceaccount:{SA_NAMESPACE}:{SA_NAME}",
        "kubernetes.io/serviceaccount/namespace": SA_NAMESPACE,
        "kubernetes.io/serviceaccount/service-account.name": SA_NAME,
        "kubernetes.io/serviceaccount/service-account.uid": uid,
    }
    signature = b64url(b"not-verified-locally-tokenreview-decides")
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}.{signature}"


def throwaway_ca_pem() -> str:
    """Vault insists on a CA when it must not read a local one; the emulator speaks plain HTTP."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sandbox-ca")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def configure_vault(bench: Bench, mount: str, bound_name: str) -> None:
    client: hvac.Client = bench.vault_client()
    client.sys.enable_auth_method("kubernetes", path=mount)
    client.auth.kubernetes.configure(
        kubernetes_host=bench.kube_server.url,
        kubernetes_ca_cert=throwaway_ca_pem(),
        disable_local_ca_jwt=True,
        mount_point=mount,
    )
    prefix = bench.vault_path
    client.sys.create_or_update_policy(
        name=mount,
        policy=f"""
path "secret/data/{prefix}" {{ capabilities = ["create", "read", "update"] }}
path "secret/metadata/{prefix}" {{ capabilities = ["create", "read", "update"] }}
path "secret/destroy/{prefix}" {{ capabilities = ["update"] }}
path "secret/config" {{ capabilities = ["read"] }}
""",
    )
    client.auth.kubernetes.create_role(
        name="rotator",
        bound_service_account_names=[bound_name],
        bound_service_account_namespaces=[SA_NAMESPACE],
        policies=[mount],
        ttl="1h",
        mount_point=mount,
    )


def start_with_kubernetes_auth(bench: Bench, tmp_path: Path, bound_name: str) -> None:
    mount = f"k8s-{uuid.uuid4().hex[:8]}"
    configure_vault(bench, mount, bound_name)
    uid = str(uuid.uuid4())
    jwt = service_account_jwt(uid)
    # Vault matches the review's user uid against the token's uid claim, as kube-apiserver sets it.
    identity = TokenIdentity(f"system:serviceaccount:{SA_NAMESPACE}:{SA_NAME}", uid=uid)
    bench.kube_server.call(lambda emulator: emulator.register_token(jwt, identity))
    token_file = tmp_path / "sa-token"
    token_file.write_text(jwt)
    vault = bench.policy_body()["spec"]["store"]["vault"]
    vault["auth"] = {"kubernetes": {"role": "rotator", "mountPath": mount}}
    bench.seed(extra_spec={"store": {"vault": vault}})
    bench.operator.extra_args = ("--service-account-token", str(token_file))
    bench.operator.start()


def test_rotation_with_vault_kubernetes_auth_through_token_review(bench: Bench, tmp_path: Path) -> None:
    start_with_kubernetes_auth(bench, tmp_path, bound_name=SA_NAME)
    bench.wait_rotations(1)
    bench.force()
    status = bench.wait_rotations(2).get("status") or {}
    assert status["history"][0]["result"] == "Succeeded"
    assert bench.secret_value() == bench.kv_value(2)
    assert bench.kv_value(1) is None


def test_role_bound_to_another_service_account_is_refused_with_a_condition(
    bench: Bench, tmp_path: Path
) -> None:
    start_with_kubernetes_auth(bench, tmp_path, bound_name="someone-else")
    status = bench.wait_condition_reason("StoreAuthFailed")
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert "spec.store.vault.auth.kubernetes" in ready["message"]
    assert "rotator" in ready["message"]
    assert bench.secret() is None

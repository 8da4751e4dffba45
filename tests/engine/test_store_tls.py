"""A Vault store over TLS: ``spec.vault.caBundle`` against a real OpenBao serving HTTPS with a CA
of its own (``-dev-tls``, one server for the module).

Trusting that CA, the store is Ready and a rotation goes through it end to end. Without the
bundle, or with another CA's, or with something that is not PEM, the store and the policy are
not Ready, the message names the field to fix and never the token, and nothing reaches Vault's
KV. The opener's directory for CA files exists only once a bundle is used, and goes with it.
"""

from __future__ import annotations

import gc
import json
import uuid
import weakref
from dataclasses import dataclass
from typing import Any

import hvac
import hvac.exceptions
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rotator.engine.store_health import StoreChecked, check_store
from rotator.models import reasons
from rotator.models.keys import STORE_VALUE_KEY
from rotator.models.store import StoreRefKind
from rotator.sandbox import demo
from rotator.sandbox.openbao import OpenBaoServer
from rotator.stores.errors import StoreUnavailable
from rotator.stores.opener import StoreOpener
from rotator.stores.vault.client import connect
from rotator.stores.vault.kv2 import VaultKV2Store
from tests.engine.harness import NS, EngineBench
from tests.fixtures.certs import self_signed_ca_pem

STORE = f"/apis/rotator.dev/v1alpha1/namespaces/{NS}/rotationstores/{demo.STORE}"
FIELD = "spec.vault.caBundle"


@dataclass(frozen=True)
class TlsVault:
    """The module's HTTPS OpenBao, with a KV v2 mount of this test's own and a token that may
    use only that mount (what a store admin would hand rotator)."""

    server: OpenBaoServer
    mount: str
    token: str

    @property
    def admin(self) -> hvac.Client:
        return hvac.Client(
            url=self.server.address, token=self.server.root_token, verify=str(self.server.ca_file), timeout=10
        )

    def written(self) -> list[str]:
        """Every path under the mount (empty: nothing was ever written)."""
        try:
            listed = self.admin.secrets.kv.v2.list_secrets(path=NS, mount_point=self.mount)
        except hvac.exceptions.InvalidPath:
            return []
        return sorted(listed["data"]["keys"])

    def value(self, path: str) -> str:
        read = self.admin.secrets.kv.v2.read_secret_version(
            path=path, mount_point=self.mount, raise_on_deleted_version=True
        )
        return str(read["data"]["data"][STORE_VALUE_KEY])


@pytest.fixture
def vault(openbao_tls: OpenBaoServer) -> TlsVault:
    assert openbao_tls.ca_pem is not None
    mount = f"kv-{uuid.uuid4().hex[:8]}"
    admin = hvac.Client(
        url=openbao_tls.address, token=openbao_tls.root_token, verify=str(openbao_tls.ca_file), timeout=10
    )
    admin.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    name = f"tenant-{mount}"
    admin.sys.create_or_update_policy(
        name,
        f"""
path "{mount}/*" {{ capabilities = ["create", "read", "update", "delete", "list", "patch"] }}
path "sys/internal/ui/mounts/{mount}" {{ capabilities = ["read"] }}
""",
    )
    token = str(admin.auth.token.create(policies=[name], ttl="1h")["auth"]["client_token"])
    return TlsVault(openbao_tls, mount, token)


@pytest.fixture
def opener(bench: EngineBench) -> StoreOpener:
    """The operator's opener, used by the policy's reconciles and the store's health checks."""
    made = StoreOpener(bench.kube, bench.metrics)
    bench.open_store = made
    return made


def seed(bench: EngineBench, vault: TlsVault, ca_bundle: str | None) -> None:
    """The engine bench's namespace, consumer and policy, on a store at the HTTPS server."""
    bench.seed()
    bench.kube.create_secret(NS, demo.token_secret(NS, vault.token))
    spec = {"address": vault.server.address, "kvMount": vault.mount, "caBundle": ca_bundle}
    bench.kube.merge_patch(STORE, {"spec": {"vault": spec}})  # a null caBundle: none set


def health(bench: EngineBench, opener: StoreOpener) -> StoreChecked:
    obj = bench.kube.get(STORE)
    assert obj is not None
    return check_store(obj, StoreRefKind.ROTATION_STORE, bench.kube, opener.health, bench.now)


def store_ready(bench: EngineBench) -> tuple[str, str, str]:
    """The store object's Ready condition as stored: (status, reason, message)."""
    obj = bench.kube.get(STORE) or {}
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    return ready["status"], ready["reason"], ready["message"]


def said(bench: EngineBench, *seen: Any) -> str:
    """Everything rotator told anyone: the store and policy objects (status included), the
    Events and results handed in."""
    return json.dumps([bench.kube.get(STORE), bench.kube.get_policy(NS, demo.POLICY), *seen], default=repr)


def other_ca_pem() -> str:
    """A well-formed CA certificate that did not sign the server's."""
    return self_signed_ca_pem("someone-else-ca")


# --- trusted -------------------------------------------------------------------------------------


def test_a_store_trusting_the_servers_ca_is_ready_and_a_rotation_goes_through_it(
    bench: EngineBench, opener: StoreOpener, vault: TlsVault
) -> None:
    seed(bench, vault, vault.server.ca_pem)
    checked = health(bench, opener)
    assert checked.health.ready, checked.health.message
    assert store_ready(bench) == (
        "True",
        reasons.STORE_READY,
        f"Vault at {vault.server.address} reachable; token accepted",
    )

    runs = bench.rotate_to_end()
    assert runs[-1].status.last_result == "Succeeded"
    assert demo.POLICY in vault.written(), "the store wrote under its own namespace's prefix"
    password = bench.secret_value()
    assert password is not None
    assert len(password) == 32
    assert vault.value(f"{NS}/{demo.POLICY}") == password, "Vault holds what the Secret carries"
    assert bench.store.versions == {}, "the engine's fake store was never used"
    assert vault.token not in said(bench, checked.events, [r.events for r in runs]), "no token anywhere"


# --- not trusted ---------------------------------------------------------------------------------


def test_without_a_ca_bundle_the_store_is_not_ready_and_the_message_says_to_set_it(
    bench: EngineBench, opener: StoreOpener, vault: TlsVault
) -> None:
    seed(bench, vault, None)
    checked = health(bench, opener)
    status, reason, message = store_ready(bench)
    assert (checked.health.ready, status, reason) == (False, "False", reasons.STORE_UNAVAILABLE)
    assert message == (
        f"Vault at {vault.server.address}: TLS certificate verification failed (unable to get local "
        f"issuer certificate): {FIELD} is not set; set it to the PEM of the CA that signed Vault's "
        "certificate"
    )
    assert [(e.reason, e.message, e.warning) for e in checked.events] == [
        (reasons.STORE_UNAVAILABLE, message, True)
    ]
    assert opener._ca_dir is None, "no bundle, no directory for one"

    run = bench.reconcile()
    ready, reason, message = run.condition("Ready")
    assert (ready, reason) == ("False", reasons.STORE_UNAVAILABLE)
    assert "TLS certificate verification failed (unable to get local issuer certificate)" in message
    assert f"the store's {FIELD} must hold the CA that signed Vault's certificate" in message
    assert vault.written() == [], "nothing reached Vault's KV"
    assert vault.token not in said(bench, checked.events, run.events)


def test_a_bundle_of_another_ca_is_not_trusted_and_nothing_is_written(
    bench: EngineBench, opener: StoreOpener, vault: TlsVault
) -> None:
    seed(bench, vault, other_ca_pem())
    checked = health(bench, opener)
    status, reason, message = store_ready(bench)
    assert (checked.health.ready, status, reason) == (False, "False", reasons.STORE_UNAVAILABLE)
    assert message == (
        f"Vault at {vault.server.address}: TLS certificate verification failed (unable to get local "
        f"issuer certificate): {FIELD} does not hold the CA that signed Vault's certificate"
    )

    run = bench.reconcile()
    ready, reason, message = run.condition("Ready")
    assert (ready, reason) == ("False", reasons.STORE_UNAVAILABLE)
    assert f"the store's {FIELD} must hold the CA that signed Vault's certificate" in message
    assert run.status.rotation is None or run.status.rotation.new_version is None
    assert vault.written() == [], "nothing reached Vault's KV"
    assert vault.token not in said(bench, checked.events, run.events)

    # The admin puts the right CA in: the next look is Ready, with no restart of anything.
    bench.kube.merge_patch(STORE, {"spec": {"vault": {"caBundle": vault.server.ca_pem}}})
    assert health(bench, opener).health.ready
    assert store_ready(bench)[:2] == ("True", reasons.STORE_READY)


NOT_PEM = {
    "text": "this is not a certificate\n",
    "truncated": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    "private key": ec.generate_private_key(ec.SECP256R1())
    .private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    .decode(),
}


@pytest.mark.parametrize("bundle", NOT_PEM.values(), ids=NOT_PEM.keys())
def test_a_bundle_that_is_not_a_pem_certificate_is_refused_before_any_request(
    bench: EngineBench, opener: StoreOpener, vault: TlsVault, bundle: str
) -> None:
    seed(bench, vault, bundle)
    checked = health(bench, opener)
    status, reason, message = store_ready(bench)
    assert (checked.health.ready, status, reason) == (False, "False", reasons.STORE_INVALID)
    where = f"RotationStore/{demo.STORE} {FIELD} holds no usable PEM CA certificate: "
    assert message.startswith(where), message
    assert message != where, "OpenSSL's reason follows"

    run = bench.reconcile()
    ready, reason, message = run.condition("Ready")
    assert (ready, reason) == ("False", reasons.STORE_INVALID)
    assert where in message
    sent = [s for m in bench.metrics.store_requests.collect() for s in m.samples if s.name.endswith("_total")]
    assert sent == [], "no request left for Vault"
    assert vault.written() == []
    assert opener._ca_dir is not None
    assert list(opener._ca_dir.iterdir()) == [], "a bundle that cannot load is never kept"
    assert vault.token not in said(bench, checked.events, run.events)


# --- the opener's CA directory -------------------------------------------------------------------


def test_the_ca_directory_is_made_for_the_first_bundle_and_removed_with_its_opener(
    bench: EngineBench, vault: TlsVault
) -> None:
    seed(bench, vault, None)
    opener = StoreOpener(bench.kube, bench.metrics)
    assert not health(bench, opener).health.ready
    assert opener._ca_dir is None, "a store without a bundle makes no directory"

    bench.kube.merge_patch(STORE, {"spec": {"vault": {"caBundle": vault.server.ca_pem}}})
    assert health(bench, opener).health.ready
    assert health(bench, opener).health.ready
    directory = opener._ca_dir
    assert directory is not None
    assert directory.is_dir()
    files = list(directory.iterdir())
    assert len(files) == 1, "one file per distinct bundle, written once"
    assert files[0].read_text() == vault.server.ca_pem

    gone = weakref.ref(opener)
    del opener
    gc.collect()
    assert gone() is None
    assert not directory.exists(), "removed with its opener"


def test_a_kubernetes_login_to_an_untrusted_server_names_the_field_and_never_the_token(
    bench: EngineBench, opener: StoreOpener, vault: TlsVault
) -> None:
    """The login is the first request of a Kubernetes-auth session: its failure says the same."""
    seed(bench, vault, None)
    demo.create(bench.kube, f"/api/v1/namespaces/{NS}/serviceaccounts", demo.service_account(NS))
    kubernetes = {"role": "rotator-{namespace}", "mountPath": "kubernetes"}
    bench.kube.merge_patch(
        STORE, {"spec": {"vault": {"auth": {"tokenSecretRef": None, "kubernetes": kubernetes}}}}
    )

    run = bench.reconcile()
    ready, reason, message = run.condition("Ready")
    assert (ready, reason) == ("False", reasons.STORE_UNAVAILABLE)
    assert (
        "Vault kubernetes login: TLS certificate verification failed (unable to get local issuer "
        f"certificate): the store's {FIELD} must hold the CA that signed Vault's certificate"
    ) in message
    assert vault.written() == []
    assert "eyJ" not in said(bench, run.events), "no service-account token (a JWT) anywhere"


def test_the_store_does_not_retry_a_certificate_that_did_not_verify(vault: TlsVault) -> None:
    """Short retries are for a server that blinks; a certificate will not verify a second later,
    so the first failure goes to the engine's backoff at once, saying which field to fix."""
    sleeps: list[float] = []
    counted: list[tuple[str, str]] = []
    client = connect(vault.server.address, 2.0, None, None, vault.token)
    store = VaultKV2Store(
        client, vault.mount, f"{NS}/x", on_request=lambda *c: counted.append(c), sleep=sleeps.append
    )
    with pytest.raises(StoreUnavailable) as raised:
        store.current()
    assert sleeps == [], "no retry"
    assert counted == [("read_metadata", "error")]
    assert str(raised.value) == (
        f"vault {vault.mount}/{NS}/x: read_metadata failed: TLS certificate verification failed (unable to "
        f"get local issuer certificate): the store's {FIELD} must hold the CA that signed Vault's "
        "certificate"
    )
    assert vault.token not in str(raised.value)

"""Opens the store a policy names, reusing clients and sessions across reconciles.

Clients are cached because building them per reconcile would mean a TLS handshake and, with
Kubernetes auth, a Vault login on every tick. A Kubernetes-auth session is renewed by logging
in again shortly before its Vault token expires, or at once after Vault refused it. AWS clients
are cached per region, endpoint and credentials (IRSA: boto3's default chain refreshes the web
identity credentials itself); a refused AWS identity drops the cached client.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from rotator.kube import Kube
from rotator.metrics import Metrics
from rotator.models import PermanentError, PolicyRef, RotationPolicySpec, reasons
from rotator.models.spec import AwsSecretsManagerStore as AwsSpec
from rotator.stores.aws.auth import access_key_from_secret, aws_client
from rotator.stores.aws.secrets_manager import AwsSecretsManagerStore
from rotator.stores.base import Store
from rotator.stores.errors import StoreAuthError
from rotator.stores.vault.auth import token_from_secret, vault_kubernetes_login
from rotator.stores.vault.client import vault_client
from rotator.stores.vault.kv2 import VaultKV2Store

SERVICE_ACCOUNT_TOKEN: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
# Log in again when less than this share of the Vault token's lifetime is left.
RENEW_FRACTION: Final = 0.2


@dataclass
class _Session:
    client: Any
    expires_at: float  # monotonic seconds; inf for tokens that do not expire


@dataclass
class StoreOpener:
    """Turns a policy's `spec.store` into a Store, reusing clients across reconciles."""

    kube: Kube
    metrics: Metrics
    vault_timeout: float = 5.0
    aws_timeout: float = 5.0
    service_account_token: Path = SERVICE_ACCOUNT_TOKEN
    clock: Callable[[], float] = time.monotonic
    # Keys hold digests, never raw tokens or keys; repr=False keeps clients out of any repr.
    _sessions: dict[tuple[str, ...], _Session] = field(default_factory=dict, repr=False)
    _policy_keys: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, policy: PolicyRef, spec: RotationPolicySpec) -> Store:
        aws = spec.store.aws_secrets_manager
        if aws is not None:
            return AwsSecretsManagerStore(
                self._aws_session(policy, aws), aws.secret_id, on_request=self._count("aws")
            )
        vault = spec.store.vault
        if vault is None:
            raise PermanentError(reasons.STORE_UNSUPPORTED, "spec.store: no supported store is set")
        if vault.auth.kubernetes is not None:
            client = self._kubernetes_session(
                policy, vault.address, vault.auth.kubernetes.role, vault.auth.kubernetes.mount_path
            )
        else:
            client = self._token_session(policy, spec)
        return VaultKV2Store(client, vault.mount, vault.path, on_request=self._count("vault"))

    def auth_failed(self, policy: PolicyRef, spec: RotationPolicySpec) -> None:
        """Drop the session this policy used (only that one: others' sessions are fine)."""
        with self._lock:
            key = self._policy_keys.pop(policy.owner, None)
            if key is not None and key not in self._policy_keys.values():
                self._sessions.pop(key, None)

    def _use(self, policy: PolicyRef, key: tuple[str, ...]) -> None:
        """Record the policy's session; a session no policy uses any more (rotated token) goes."""
        previous = self._policy_keys.get(policy.owner)
        self._policy_keys[policy.owner] = key
        if previous is not None and previous != key and previous not in self._policy_keys.values():
            self._sessions.pop(previous, None)

    def _count(self, store: str) -> Callable[[str, str], None]:
        def count(operation: str, result: str) -> None:
            self.metrics.store_requests.labels(store=store, operation=operation, result=result).inc()

        return count

    def _token_session(self, policy: PolicyRef, spec: RotationPolicySpec) -> Any:
        vault = spec.store.vault
        assert vault is not None
        ref = vault.auth.token_secret_ref
        assert ref is not None, "the models guarantee exactly one auth method"
        where = f"spec.store.vault.auth.tokenSecretRef: Secret {policy.namespace}/{ref.name}"
        token = token_from_secret(where, self.kube.get_secret(policy.namespace, ref.name), ref.key)
        key = (vault.address, "token", _digest(token))
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = _Session(vault_client(vault.address, token, self.vault_timeout), float("inf"))
                self._sessions[key] = session
            self._use(policy, key)
        return session.client

    def _aws_session(self, policy: PolicyRef, aws: AwsSpec) -> Any:
        address = _aws_address(aws)
        endpoint = str(aws.endpoint_url) if aws.endpoint_url is not None else None
        ref = aws.auth.access_key_secret_ref
        if ref is None:  # irsa: boto3's default credential chain (env, web identity, profile)
            key: tuple[str, ...] = (address, "irsa")
            access_key_id = secret_access_key = None
        else:
            secret = self.kube.get_secret(policy.namespace, ref.name)
            access_key_id = self._aws_key(policy, ref.name, ref.access_key_id_key, secret)
            secret_access_key = self._aws_key(policy, ref.name, ref.secret_access_key_key, secret)
            key = (address, "keys", _digest(access_key_id, secret_access_key))
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                client = aws_client(aws.region, endpoint, access_key_id, secret_access_key, self.aws_timeout)
                session = _Session(client, float("inf"))
                self._sessions[key] = session
            self._use(policy, key)
        return session.client

    @staticmethod
    def _aws_key(policy: PolicyRef, name: str, key: str, secret: Mapping[str, Any] | None) -> str:
        where = f"spec.store.awsSecretsManager.auth.accessKeySecretRef: Secret {policy.namespace}/{name}"
        return access_key_from_secret(where, secret, key)

    def _kubernetes_session(self, policy: PolicyRef, address: str, role: str, mount_path: str) -> Any:
        key = (address, "kubernetes", role, mount_path)
        now = self.clock()
        with self._lock:
            session = self._sessions.get(key)
            if session is not None and now < session.expires_at:
                self._use(policy, key)
                return session.client
        try:
            jwt = self.service_account_token.read_text().strip()
        except OSError as exc:
            raise PermanentError(
                reasons.STORE_AUTH_MISSING,
                f"spec.store.vault.auth.kubernetes: no service account token at {self.service_account_token} "
                f"({type(exc).__name__})",
            ) from None
        client = vault_client(address, "", self.vault_timeout)
        try:
            lifetime = vault_kubernetes_login(client, role, jwt, mount_path)
        except StoreAuthError as exc:
            raise PermanentError(
                reasons.STORE_AUTH_FAILED, f"spec.store.vault.auth.kubernetes: {exc}"
            ) from None
        expires = now + lifetime * (1 - RENEW_FRACTION) if lifetime > 0 else float("inf")
        with self._lock:
            self._sessions[key] = _Session(client, expires)
            self._use(policy, key)
        return client


def _digest(*secrets: str) -> str:
    return hashlib.sha256("\0".join(secrets).encode()).hexdigest()


def _aws_address(aws: AwsSpec) -> str:
    """The cache key's first part for an AWS location (``forget`` drops by it)."""
    return f"aws:{aws.region}:{aws.endpoint_url or ''}"

"""Builds the operator's clients once per process and opens stores for policies.

Clients are cached (one hvac client per Vault address and token) because building them per
reconcile would mean a TLS handshake and a login on every tick.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from rotator.kube import Kube
from rotator.metrics import Metrics
from rotator.models import RotationPolicySpec
from rotator.steps import reasons
from rotator.steps.context import PermanentStepError, PolicyRef
from rotator.stores.base import Store
from rotator.stores.vault_kv2 import VaultKV2Store, vault_client

SERVICE_ACCOUNT_TOKEN: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
STORE_AUTH_MISSING: Final = "StoreAuthMissing"
STORE_UNSUPPORTED: Final = "StoreUnsupported"


@dataclass
class StoreOpener:
    """Turns a policy's `spec.store` into a Store, reusing clients across reconciles."""

    kube: Kube
    metrics: Metrics
    vault_timeout: float = 5.0
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, policy: PolicyRef, spec: RotationPolicySpec) -> Store:
        vault = spec.store.vault
        if vault is None:
            raise PermanentStepError(
                STORE_UNSUPPORTED,
                "spec.store.awsSecretsManager: the AWS Secrets Manager store is not available yet",
            )
        token = self._vault_token(policy, spec)
        key = (vault.address, token)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = vault_client(vault.address, token, self.vault_timeout)
                self._clients[key] = client
        return VaultKV2Store(client, vault.mount, vault.path, on_request=self._count("vault"))

    def _count(self, store: str) -> Callable[[str, str], None]:
        def count(operation: str, result: str) -> None:
            self.metrics.store_requests.labels(store=store, operation=operation, result=result).inc()

        return count

    def _vault_token(self, policy: PolicyRef, spec: RotationPolicySpec) -> str:
        vault = spec.store.vault
        assert vault is not None
        ref = vault.auth.token_secret_ref
        if ref is None:
            raise PermanentStepError(
                STORE_UNSUPPORTED,
                "spec.store.vault.auth.kubernetes: Kubernetes auth is not available yet; use tokenSecretRef",
            )
        secret = self.kube.get_secret(policy.namespace, ref.name)
        encoded = ((secret or {}).get("data") or {}).get(ref.key)
        if not encoded:
            raise PermanentStepError(
                STORE_AUTH_MISSING,
                f"spec.store.vault.auth.tokenSecretRef: Secret {policy.namespace}/{ref.name} "
                f"has no key {ref.key!r}",
            )
        return base64.b64decode(encoded).decode().strip()


__all__ = ["StoreOpener", "reasons"]

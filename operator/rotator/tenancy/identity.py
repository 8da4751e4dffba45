"""Tokens for a service account of the policy's namespace (the TokenRequest API).

This is the only identity rotator sends to a store (DESIGN §6): Vault's Kubernetes auth and AWS's
web identity check it (TokenReview / the cluster's OIDC issuer) and their own role bindings decide
what that namespace may touch. The operator's own service-account token never leaves the cluster.
Tokens are short-lived and bound to the audiences the store names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rotator.kube import Kube, KubeError, KubeUnavailable
from rotator.models import PermanentError, parse_time, reasons

TOKEN_SECONDS = 600
"""Requested lifetime: long enough for a login, short enough that a leaked one soon expires
(kube-apiserver's minimum is 600 s)."""


@dataclass(frozen=True)
class MintedToken:
    token: str
    expires_at: datetime | None

    def __repr__(self) -> str:  # never the token
        return f"MintedToken(expires_at={self.expires_at})"


def mint_token(kube: Kube, namespace: str, service_account: str, audiences: tuple[str, ...]) -> MintedToken:
    """A fresh token for ``namespace/service_account`` with these audiences."""
    body = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"audiences": list(audiences), "expirationSeconds": TOKEN_SECONDS},
    }
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token"
    try:
        answer = kube.create(path, body)
    except KubeUnavailable:
        raise
    except KubeError as exc:
        hint = (
            "create it" if exc.status == 404 else "check the operator's RBAC (serviceaccounts/token create)"
        )
        raise PermanentError(
            reasons.STORE_AUTH_MISSING,
            f"ServiceAccount {namespace}/{service_account}: TokenRequest refused ({exc}); {hint}",
        ) from None
    status = answer.get("status") or {}
    token = str(status.get("token") or "")
    if not token:
        raise PermanentError(
            reasons.STORE_AUTH_MISSING,
            f"ServiceAccount {namespace}/{service_account}: TokenRequest gave no token",
        )
    expiry = status.get("expirationTimestamp")
    return MintedToken(token, parse_time(str(expiry)) if expiry else None)

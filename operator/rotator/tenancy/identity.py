"""Tokens for a service account of the policy's namespace (the TokenRequest API).

This is the only identity rotator sends to a store (DESIGN §6): Vault's Kubernetes auth and AWS's
web identity check it (TokenReview / the cluster's OIDC issuer) and their own role bindings decide
what that namespace may touch. The operator's own service-account token never leaves the cluster.
Tokens are short-lived and bound to the audiences the store names.

Who writes a store chooses those audiences and the address the token goes to, so a token for an
audience the Kubernetes API server itself accepts would hand a store's author a Kubernetes
credential of that service account. :class:`ApiAudiences` learns the API server's audiences, and
:func:`mint_token` refuses a store that names one of them, or none (an empty list asks the API
server for its own audiences): a store yields tokens only for an audience that is not Kubernetes.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from rotator.kube import Kube, KubeError, KubeUnavailable
from rotator.models import PermanentError, parse_time, reasons

TOKEN_SECONDS = 600
"""Requested lifetime: long enough for a login, short enough that a leaked one soon expires
(kube-apiserver's minimum is 600 s)."""

IN_POD_TOKEN: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
"""The operator's own projected service-account token in its pod: issued for the API server's
audiences (kube-apiserver's ``--api-audiences``, by default its issuer)."""

KNOWN_API_AUDIENCES: Final = frozenset(
    {"https://kubernetes.default.svc", "https://kubernetes.default.svc.cluster.local"}
)
"""Refused whatever was learned: the issuer a default kube-apiserver (kubeadm, kind, EKS, the
sandbox's emulator) uses as its audience, before the operator has learned the real ones."""


@dataclass(frozen=True)
class MintedToken:
    token: str
    expires_at: datetime | None

    def __repr__(self) -> str:  # never the token
        return f"MintedToken(expires_at={self.expires_at})"


def token_audiences(token: str) -> frozenset[str]:
    """The ``aud`` claim of a JWT, unverified (empty when it is not a JWT): only ever read from a
    token the API server just issued to the operator, never from one a tenant handed in."""
    parts = token.split(".")
    if len(parts) != 3:
        return frozenset()
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return frozenset()
    aud = claims.get("aud") if isinstance(claims, dict) else None
    if isinstance(aud, str):
        return frozenset({aud})
    if isinstance(aud, list):
        return frozenset(str(a) for a in aud)
    return frozenset()


@dataclass
class ApiAudiences:
    """The audiences the Kubernetes API server accepts, learned once per process.

    In a pod: the ``aud`` claim of the operator's own projected token (no request). Elsewhere (the
    sandbox, a kubeconfig): the audiences of a token the API server issues when none is asked for,
    minted once for the first service account rotator mints a token for (the same
    ``serviceaccounts/token`` grant; that token is read and dropped, never sent anywhere).
    :data:`KNOWN_API_AUDIENCES` are refused in any case.
    """

    token_file: Path | None = IN_POD_TOKEN
    _learned: frozenset[str] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def known(self) -> frozenset[str]:
        """What is known without a request: the built-in ones, the in-pod token's, any learned."""
        with self._lock:
            if self._learned is None and self.token_file is not None and self.token_file.is_file():
                self._learned = token_audiences(self.token_file.read_text().strip()) or None
            return KNOWN_API_AUDIENCES | (self._learned or frozenset())

    def learn(self, kube: Kube, namespace: str, service_account: str) -> frozenset[str]:
        """:meth:`known`, after asking the API server once when nothing was learned yet."""
        known = self.known()
        with self._lock:
            if self._learned is not None:
                return known
        answer = _token_request(kube, namespace, service_account, ())
        issued = frozenset(str(a) for a in (answer.get("spec") or {}).get("audiences") or ())
        issued |= token_audiences(str((answer.get("status") or {}).get("token") or ""))
        with self._lock:
            if issued:
                self._learned = issued
        return known | issued


def check_audiences(audiences: Collection[str], api_audiences: Collection[str], where: str) -> None:
    """Refuse audiences that would make a minted token a Kubernetes credential.

    ``where`` starts the message: the store and field (``RotationStore/x
    spec.vault.auth.kubernetes.audiences``).
    """
    if not audiences:
        raise PermanentError(
            reasons.STORE_INVALID,
            f"{where}: must name at least one audience (without one the token is for the "
            "Kubernetes API server)",
        )
    clash = sorted(set(audiences) & set(api_audiences))
    if clash:
        raise PermanentError(
            reasons.STORE_INVALID,
            f"{where}: {', '.join(clash)} is an audience of the Kubernetes API server; a token for it "
            "would be a Kubernetes credential of the namespace's service account (name the store's "
            "own audience, e.g. vault or sts.amazonaws.com)",
        )


def mint_token(
    kube: Kube,
    namespace: str,
    service_account: str,
    audiences: tuple[str, ...],
    *,
    api_audiences: ApiAudiences,
    where: str,
) -> MintedToken:
    """A fresh token for ``namespace/service_account`` with these audiences, none of them the API
    server's (:func:`check_audiences`; ``where`` names the store's audiences field)."""
    check_audiences(audiences, api_audiences.known(), where)
    check_audiences(audiences, api_audiences.learn(kube, namespace, service_account), where)
    answer = _token_request(kube, namespace, service_account, audiences)
    status = answer.get("status") or {}
    token = str(status.get("token") or "")
    if not token:
        raise PermanentError(
            reasons.STORE_AUTH_MISSING,
            f"ServiceAccount {namespace}/{service_account}: TokenRequest gave no token",
        )
    expiry = status.get("expirationTimestamp")
    return MintedToken(token, parse_time(str(expiry)) if expiry else None)


def _token_request(
    kube: Kube, namespace: str, service_account: str, audiences: tuple[str, ...]
) -> Mapping[str, Any]:
    body = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"audiences": list(audiences), "expirationSeconds": TOKEN_SECONDS},
    }
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token"
    try:
        return kube.create(path, body)
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

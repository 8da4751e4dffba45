"""Vault authentication methods: Kubernetes auth (login with a service-account token) and a
static token read from a Secret. Each returns what the opener caches; none ever echoes a token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import hvac
import hvac.exceptions
import requests

from rotator.stores.errors import StoreAuthError, StoreUnavailable
from rotator.stores.secret_ref import single_line_value
from rotator.stores.vault.client import TRANSIENT
from rotator.stores.vault.tls import untrusted_certificate, verification_failed


def vault_kubernetes_login(client: hvac.Client, role: str, jwt: str, mount_point: str) -> float:
    """Log the client in with a service-account token; returns the token's lifetime in seconds.

    Vault checks the token with the cluster's TokenReview API and the role's bindings, so a
    refusal names the role (never the token). The client keeps the issued Vault token.
    """
    try:
        response = client.auth.kubernetes.login(role=role, jwt=jwt, mount_point=mount_point)
    except TRANSIENT as exc:
        verdict = untrusted_certificate(exc)
        detail = type(exc).__name__ if verdict is None else verification_failed(verdict, None)
        raise StoreUnavailable(f"Vault kubernetes login: {detail}") from None
    except requests.exceptions.RequestException as exc:
        raise StoreUnavailable(f"Vault kubernetes login: {type(exc).__name__}") from None
    except hvac.exceptions.VaultError as exc:
        detail = ", ".join(str(e) for e in exc.errors) if exc.errors else type(exc).__name__
        raise StoreAuthError(
            f"Vault kubernetes login with role {role!r} at auth/{mount_point} refused: {detail}"
        ) from None
    return float((response.get("auth") or {}).get("lease_duration") or 0)


def token_from_secret(where: str, secret: Mapping[str, Any] | None, key: str) -> str:
    """The Vault token held under ``key`` of a Secret (``where`` names the field and the Secret)."""
    return single_line_value(where, secret, key, "Vault token")

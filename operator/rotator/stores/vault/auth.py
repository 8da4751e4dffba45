"""Vault authentication methods: Kubernetes auth (login with a service-account token) and a
static token read from a Secret. Each returns what the opener caches; none ever echoes a token.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

import hvac
import hvac.exceptions
import requests
import requests.adapters
import requests.utils

from rotator.stores.errors import StoreAuthError, StoreUnavailable
from rotator.stores.secret_ref import single_line_value
from rotator.stores.vault.client import TRANSIENT
from rotator.stores.vault.tls import untrusted_certificate, verification_failed


def connect(
    address: str, timeout: float, namespace: str | None = None, ca_file: str | None = None, token: str = ""
) -> hvac.Client:
    """A client for one Vault server (and Vault namespace), trusting ``ca_file`` when given.

    ``timeout`` (seconds) bounds every request, so an unreachable Vault is StoreUnavailable, not
    a stuck reconcile.
    """
    # Plain http has nothing to verify; a path here would cost a stat() per request (requests
    # asks whether it is a directory every time): 6 % of the operator's CPU under a mass rotation.
    verify = True if address.lower().startswith("http://") else (ca_file or _env_ca_bundle() or True)
    return hvac.Client(
        url=address,
        token=token,
        timeout=timeout,
        namespace=namespace or None,
        verify=verify,
        session=_session(address, verify),
    )


POOL_SIZE: Final = 32
"""Connections kept per Vault server: more than the reconcile threads (``Settings.
reconcile_workers``, 16) plus the store loops, so none is closed and opened again for want of a
slot (requests' default of 10 did exactly that under a mass rotation)."""


def _session(address: str, verify: str | bool) -> requests.Session:
    """A requests session that reads the environment once, not per request, and trusts ``verify``.

    With ``trust_env`` requests looks up proxies (every environment variable, twice) and
    ``~/.netrc`` on every call: ~1 ms of CPU a request, a tenth of a rotation's. The proxy for
    ``address`` (``HTTPS_PROXY``/``NO_PROXY``) is resolved here instead, and the CA bundle
    variables in :func:`connect`; netrc never applied (Vault takes its token in a header).

    The session carries the trust itself: given a session, hvac takes the session's ``verify``
    over its own argument whenever it is truthy, and a new session's is ``True`` (the bundled
    CAs), which silently dropped a store's ``caBundle``.
    """
    session = requests.Session()
    session.trust_env = False
    session.verify = verify
    session.proxies = dict(requests.utils.get_environ_proxies(address))
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _env_ca_bundle() -> str | None:
    """What requests itself would have taken from the environment (``trust_env``)."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")


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

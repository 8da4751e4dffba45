"""The hvac client (over ``DirectSession``) and the failures that count as "Vault is unreachable"
(temporary)."""

from __future__ import annotations

import os
from typing import Final

import hvac
import hvac.exceptions
import requests
import requests.adapters
import requests.utils

from rotator.stores.vault.transport import DirectSession

TRANSIENT: Final = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    hvac.exceptions.VaultDown,
    hvac.exceptions.InternalServerError,
    hvac.exceptions.BadGateway,
    hvac.exceptions.RateLimitExceeded,
)


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
        session=_session(address, verify, timeout),
    )


POOL_SIZE: Final = 32
"""Connections kept per Vault server: more than the reconcile threads (``Settings.
reconcile_workers``, 16) plus the store loops, so none is closed and opened again for want of a
slot (requests' default of 10 did exactly that under a mass rotation)."""


def _session(address: str, verify: str | bool, timeout: float) -> requests.Session:
    """A requests session (``DirectSession``: plain calls straight to urllib3) that reads the
    environment once, not per request, and trusts ``verify``.

    With ``trust_env`` requests looks up proxies (every environment variable, twice) and
    ``~/.netrc`` on every call: ~1 ms of CPU a request, a tenth of a rotation's. The proxy for
    ``address`` (``HTTPS_PROXY``/``NO_PROXY``) is resolved here instead, and the CA bundle
    variables in :func:`connect`; netrc never applied (Vault takes its token in a header).

    The session carries the trust itself: given a session, hvac takes the session's ``verify``
    over its own argument whenever it is truthy, and a new session's is ``True`` (the bundled
    CAs), which silently dropped a store's ``caBundle``.
    """
    session = DirectSession(POOL_SIZE, timeout)
    session.trust_env = False
    session.verify = verify
    session.proxies = dict(requests.utils.get_environ_proxies(address))
    # What goes through requests after all (a proxy, a redirect) keeps as many connections.
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _env_ca_bundle() -> str | None:
    """What requests itself would have taken from the environment (``trust_env``)."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")


def vault_client(address: str, token: str, timeout: float) -> hvac.Client:
    """A client on a token, as the operator's own (``connect``; once per process per address
    and token, see ``rotator.stores.opener``)."""
    return connect(address, timeout, token=token)

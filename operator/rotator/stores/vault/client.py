"""The hvac client and the failures that count as "Vault is unreachable" (temporary)."""

from __future__ import annotations

from typing import Final

import hvac
import hvac.exceptions
import requests

TRANSIENT: Final = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    hvac.exceptions.VaultDown,
    hvac.exceptions.InternalServerError,
    hvac.exceptions.BadGateway,
    hvac.exceptions.RateLimitExceeded,
)


def vault_client(address: str, token: str, timeout: float) -> hvac.Client:
    """Build an hvac client (once per process per address and token, see ``rotator.stores.opener``).

    ``timeout`` (seconds) bounds every HTTP request, so an unreachable Vault turns into
    StoreUnavailable instead of a stuck reconcile.
    """
    return hvac.Client(url=address, token=token, timeout=timeout)

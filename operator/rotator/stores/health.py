"""Is a store usable at all? The connectivity and credential check behind a store's Ready condition.

Per-namespace identities (Kubernetes auth, web identity) can only be proven when a policy of that
namespace logs in; what can be checked for the store as a whole is that its server answers and,
for a static credential, that the credential is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

import botocore.exceptions
import hvac.exceptions
import requests

from rotator.models import reasons
from rotator.models.store import AwsConnection, VaultConnection
from rotator.stores.aws.auth import sts_client
from rotator.stores.vault.auth import connect


@dataclass(frozen=True)
class Health:
    ready: bool
    reason: str
    message: str


def check_vault(vault: VaultConnection, token: str | None, timeout: float, ca_file: str | None) -> Health:
    client = connect(vault.address, timeout, vault.namespace, ca_file, token or "")
    try:
        health = client.sys.read_health_status(method="GET")
    except (requests.exceptions.RequestException, hvac.exceptions.VaultError) as exc:
        return Health(False, reasons.STORE_UNAVAILABLE, f"Vault at {vault.address}: {type(exc).__name__}")
    if isinstance(health, dict) and health.get("sealed"):
        return Health(False, reasons.STORE_UNAVAILABLE, f"Vault at {vault.address} is sealed")
    if token is not None:
        try:
            client.auth.token.lookup_self()
        except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized):
            return Health(False, reasons.STORE_AUTH_FAILED, f"Vault at {vault.address} refused the token")
        except (requests.exceptions.RequestException, hvac.exceptions.VaultError) as exc:
            return Health(False, reasons.STORE_UNAVAILABLE, f"Vault at {vault.address}: {type(exc).__name__}")
        return Health(True, reasons.STORE_READY, f"Vault at {vault.address} reachable; token accepted")
    return Health(True, reasons.STORE_READY, f"Vault at {vault.address} reachable; logins are per namespace")


def check_aws(aws: AwsConnection, keys: tuple[str, str] | None, timeout: float) -> Health:
    where = f"AWS {aws.region}" + (f" at {aws.endpoint}" if aws.endpoint else "")
    if keys is None:
        return Health(True, reasons.STORE_READY, f"{where}: web identity is checked per namespace at login")
    try:
        sts_client(aws.region, aws.endpoint, keys[0], keys[1], timeout).get_caller_identity()
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        return Health(False, reasons.STORE_AUTH_FAILED, f"{where} refused the access key ({code})")
    except botocore.exceptions.BotoCoreError as exc:
        return Health(False, reasons.STORE_UNAVAILABLE, f"{where}: {type(exc).__name__}")
    return Health(True, reasons.STORE_READY, f"{where} reachable; access key accepted")

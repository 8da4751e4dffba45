"""Is a store usable at all? The connectivity and credential check behind a store's Ready condition.

What is checked depends on whose identity the store logs in with:

- a static credential (Vault token, AWS keys): the server answers and accepts it (Vault
  ``lookup-self``, STS ``GetCallerIdentity``);
- a namespaced ``RotationStore`` with Kubernetes auth or web identity: its own namespace is the
  only one that uses it, so the check is that namespace's real login — a token minted for the
  store's service account, Vault ``auth/<mount>/login`` with the role (the Vault token it yields
  is revoked again), or STS ``AssumeRoleWithWebIdentity`` then ``GetCallerIdentity`` with what it
  gave. A refusal is ``StoreAuthFailed`` naming the role and the service account, never a token;
- a ``ClusterRotationStore`` with a per-namespace identity: no namespace is *the* store's, so the
  check is that the server answers (Vault ``sys/health``, an unsigned STS request that carries no
  credential); each namespace's login is proven at its policies' first login, and refused there
  with the same reason on the policy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import hvac
import hvac.exceptions
import requests

from rotator.models import reasons
from rotator.models.store import AwsConnection, VaultConnection
from rotator.stores.errors import StoreAuthError, StoreUnavailable
from rotator.stores.vault.auth import vault_kubernetes_login
from rotator.stores.vault.client import connect
from rotator.stores.vault.tls import untrusted_certificate, verification_failed

PER_NAMESPACE: Final = "logins are proven per namespace, at each policy's first login"


@dataclass(frozen=True)
class Health:
    ready: bool
    reason: str
    message: str


@dataclass(frozen=True)
class IdentityLogin:
    """A namespaced store's login as its own namespace's service account."""

    #: The Vault role, or the AWS role ARN, with ``{namespace}`` filled in.
    role: str
    namespace: str
    service_account: str
    #: The store and the auth field, to start a refusal's message with.
    where: str
    #: Mints the service account's token; called only once the server has answered.
    token: Callable[[], str] = field(repr=False)
    #: Vault's Kubernetes auth mount (unused for AWS).
    mount_path: str = "kubernetes"

    @property
    def who(self) -> str:
        return f"service account {self.namespace}/{self.service_account}"


def check_vault(
    vault: VaultConnection,
    token: str | None,
    timeout: float,
    ca_file: str | None,
    login: IdentityLogin | None = None,
) -> Health:
    client = connect(vault.address, timeout, vault.namespace, ca_file, token or "")
    try:
        health = client.sys.read_health_status(method="GET")
    except requests.exceptions.SSLError as exc:
        verdict = untrusted_certificate(exc)
        if verdict is None:
            return Health(False, reasons.STORE_UNAVAILABLE, f"Vault at {vault.address}: {type(exc).__name__}")
        failed = verification_failed(verdict, bool(vault.ca_bundle))
        return Health(False, reasons.STORE_UNAVAILABLE, f"Vault at {vault.address}: {failed}")
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
    if login is not None:
        return _vault_login(client, vault.address, login)
    return Health(True, reasons.STORE_READY, f"Vault at {vault.address} reachable; {PER_NAMESPACE}")


def _vault_login(client: hvac.Client, address: str, login: IdentityLogin) -> Health:
    try:
        vault_kubernetes_login(client, login.role, login.token(), login.mount_path)
    except StoreAuthError as exc:
        return Health(False, reasons.STORE_AUTH_FAILED, f"{login.where} ({login.who}): {exc}")
    except StoreUnavailable as exc:
        return Health(False, reasons.STORE_UNAVAILABLE, f"Vault at {address}: {exc}")
    # The check needs no session: give the Vault token back rather than let one pile up per minute.
    with contextlib.suppress(requests.exceptions.RequestException, hvac.exceptions.VaultError):
        client.auth.token.revoke_self()
    message = f"Vault at {address} reachable; {login.who} logged in with role {login.role!r}"
    return Health(True, reasons.STORE_READY, message)


def check_aws(
    aws: AwsConnection,
    keys: tuple[str, str] | None,
    timeout: float,
    login: IdentityLogin | None = None,
) -> Health:
    import botocore.exceptions  # here: a Vault-only operator never loads botocore

    from rotator.stores.aws.auth import sts_answers, sts_client

    where = f"AWS {aws.region}" + (f" at {aws.endpoint}" if aws.endpoint else "")
    if login is not None:
        return _aws_login(aws, where, timeout, login)
    if keys is None:
        try:
            url = sts_answers(aws.region, aws.endpoint, timeout)
        except StoreUnavailable as exc:
            return Health(False, reasons.STORE_UNAVAILABLE, f"{where}: {exc}")
        return Health(
            True, reasons.STORE_READY, f"{where}: STS at {url} reachable; web identity {PER_NAMESPACE}"
        )
    try:
        sts_client(aws.region, aws.endpoint, keys[0], keys[1], timeout).get_caller_identity()
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        return Health(False, reasons.STORE_AUTH_FAILED, f"{where} refused the access key ({code})")
    except botocore.exceptions.BotoCoreError as exc:
        return Health(False, reasons.STORE_UNAVAILABLE, f"{where}: {type(exc).__name__}")
    return Health(True, reasons.STORE_READY, f"{where} reachable; access key accepted")


def _aws_login(aws: AwsConnection, where: str, timeout: float, login: IdentityLogin) -> Health:
    import botocore.exceptions

    from rotator.stores.aws.auth import assume_web_identity, sts_client

    try:
        credentials = assume_web_identity(
            aws.region, aws.endpoint, login.role, f"rotator-{login.namespace}", login.token(), timeout
        )
        caller = sts_client(
            aws.region,
            aws.endpoint,
            credentials.access_key_id,
            credentials.secret_access_key,
            timeout,
            credentials.session_token,
        ).get_caller_identity()
    except StoreAuthError as exc:
        return Health(False, reasons.STORE_AUTH_FAILED, f"{login.where} ({login.who}): {exc}")
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        message = f"{login.where} ({login.who}): STS GetCallerIdentity refused the assumed role ({code})"
        return Health(False, reasons.STORE_AUTH_FAILED, message)
    except StoreUnavailable as exc:
        return Health(False, reasons.STORE_UNAVAILABLE, f"{where}: {exc}")
    except botocore.exceptions.BotoCoreError as exc:
        return Health(False, reasons.STORE_UNAVAILABLE, f"{where}: {type(exc).__name__}")
    message = f"{where} reachable; {login.who} assumed {login.role} (caller {caller.get('Arn', '?')})"
    return Health(True, reasons.STORE_READY, message)

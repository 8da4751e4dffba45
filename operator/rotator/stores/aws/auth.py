"""AWS authentication for the Secrets Manager store: the client, and static keys from a Secret.

A store's session always carries explicit credentials: the keys of its opted-in Secret, or those
STS gave for the namespace's minted token. It never falls back to boto3's default credential
chain, which would sign requests to the store's endpoint (one a tenant may run) with the
operator's own AWS identity (environment, IRSA, instance profile). A key Secret is read with the
caller's ``read_secret`` and validated without ever echoing what it holds.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import botocore
import botocore.exceptions
import requests
from botocore.config import Config

from rotator.stores.errors import StoreAuthError, StoreUnavailable
from rotator.stores.secret_ref import single_line_value

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
else:
    SecretsManagerClient = Any


def _session(**keys: Any) -> Any:
    """A fresh boto3 session. boto3 is imported here, on the first AWS store or target, not with
    this module: a Vault-only operator never pays its memory (about 7 MiB of RSS)."""
    import boto3

    return boto3.session.Session(**keys)


def aws_client(
    region: str,
    endpoint_url: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    timeout: float = 5.0,
    session_token: str | None = None,
) -> SecretsManagerClient:
    """Build a Secrets Manager client (once per process per location and keys, see ``rotator.stores.opener``).

    Without keys the default credential chain applies (environment, IRSA web identity, instance
    profile). ``timeout`` bounds connect and read, and botocore's own retries are cut to one so
    the store's short retries and the engine's backoff decide, not a hidden loop. Retry mode
    ``adaptive`` keeps botocore's client-side rate limiter: after a throttling answer
    (ThrottlingException, 429) the client slows its sends for every policy sharing it (one
    client per session, ``rotator.stores.opener``), which is how AWS asks clients to back off.
    """
    config = Config(
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"mode": "adaptive", "total_max_attempts": 1},
    )
    session = _session()  # a session per client: boto3's default one is not thread-safe
    client: SecretsManagerClient = session.client(
        "secretsmanager",
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        aws_session_token=session_token,
        config=config,
    )
    return client


class AwsSession:
    """One identity's AWS session (the namespace's, as the store logs in): a client per service,
    built once and reused. The Secrets Manager store uses ``secretsmanager``; an
    ``awsIamAccessKey`` target uses ``iam`` with the same identity, and ``client_as`` to check a
    key it minted. ``endpoint_url`` (an AWS-compatible server such as moto) applies to every
    service. boto3 sessions are not thread-safe (clients are): the lock guards building.

    Both keys are required and non-empty (StoreAuthError otherwise): boto3 treats empty keys as
    none and would sign with the operator's own identity instead (see the module's docstring)."""

    def __init__(
        self,
        region: str,
        endpoint_url: str | None,
        access_key_id: str,
        secret_access_key: str,
        timeout: float = 5.0,
        session_token: str | None = None,
    ) -> None:
        if not access_key_id or not secret_access_key:
            raise StoreAuthError("no AWS access key: refusing to fall back to the operator's own identity")
        self.region = region
        self.endpoint_url = endpoint_url
        self.timeout = timeout
        # Typed Any: a service named at run time defeats boto3-stubs' per-service overloads.
        self._session: Any = _session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            aws_session_token=session_token or None,
        )
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<AwsSession {self.region} {self.endpoint_url or ''}>"  # never the keys

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._session.client(
                    service,
                    region_name=self.region,
                    endpoint_url=self.endpoint_url,
                    config=_config(self.timeout),
                )
            return self._clients[service]

    def client_as(self, service: str, access_key_id: str, secret_access_key: str) -> Any:
        """A client with other static keys, same region and endpoint (never cached)."""
        session: Any = _session()
        return session.client(
            service,
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=_config(self.timeout),
        )


def _config(timeout: float) -> Config:
    return Config(connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 1})


@dataclass(frozen=True)
class TemporaryCredentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expires_at: datetime | None = None


def sts_client(
    region: str,
    endpoint_url: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    timeout: float,
    session_token: str | None = None,
) -> Any:
    """An STS client with these keys (for the store's health check: GetCallerIdentity)."""
    config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 1})
    return _session().client(
        "sts",
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        aws_session_token=session_token,
        config=config,
    )


def sts_answers(region: str, endpoint_url: str | None, timeout: float) -> str:
    """Whether STS answers at all: one plain GET of its endpoint, carrying no credential of any
    kind (any HTTP status will do); returns the URL asked. StoreUnavailable when nothing answers."""
    config = Config(signature_version=botocore.UNSIGNED)
    url: str = (
        _session()
        .client("sts", region_name=region, endpoint_url=endpoint_url, config=config)
        .meta.endpoint_url
    )
    try:
        requests.get(url, timeout=timeout, allow_redirects=False).close()
    except requests.exceptions.RequestException as exc:
        raise StoreUnavailable(f"STS at {url}: {type(exc).__name__}") from None
    return url


def assume_web_identity(
    region: str, endpoint_url: str | None, role_arn: str, session_name: str, token: str, timeout: float
) -> TemporaryCredentials:
    """STS AssumeRoleWithWebIdentity with a token minted for the namespace's service account.

    The call is unsigned (the web identity token is the proof); a refusal names the role, never
    the token.
    """
    config = Config(
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"total_max_attempts": 1},
        signature_version=botocore.UNSIGNED,
    )
    sts = _session().client("sts", region_name=region, endpoint_url=endpoint_url, config=config)
    try:
        answer = sts.assume_role_with_web_identity(
            RoleArn=role_arn, RoleSessionName=session_name[:64], WebIdentityToken=token
        )
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError) as exc:
        raise StoreUnavailable(f"STS AssumeRoleWithWebIdentity: {type(exc).__name__}") from None
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        raise StoreAuthError(f"STS AssumeRoleWithWebIdentity for {role_arn} refused: {code}") from None
    credentials = answer.get("Credentials") or {}
    if not all(credentials.get(k) for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")):
        # An endpoint a tenant runs can answer anything: empty keys would make boto3 fall back
        # to the operator's own identity for every later request to that endpoint.
        raise StoreAuthError(f"STS AssumeRoleWithWebIdentity for {role_arn} answered without credentials")
    expiry = credentials.get("Expiration")
    return TemporaryCredentials(
        credentials["AccessKeyId"],
        credentials["SecretAccessKey"],
        credentials["SessionToken"],
        expiry if isinstance(expiry, datetime) else None,
    )


def access_key_from_secret(where: str, secret: Mapping[str, Any] | None, key: str) -> str:
    """One key of an access-key Secret (``where`` names the field and the Secret)."""
    return single_line_value(where, secret, key, "AWS key")

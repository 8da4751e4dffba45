"""AWS authentication for the Secrets Manager store: the client, and static keys from a Secret.

Without a key Secret the default credential chain applies (environment, IRSA web identity,
instance profile), which refreshes its own credentials. A key Secret is read with the caller's
``read_secret`` and validated without ever echoing what it holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from rotator.stores.secret_ref import single_line_value

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
else:
    SecretsManagerClient = Any


def aws_client(
    region: str,
    endpoint_url: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    timeout: float = 5.0,
) -> SecretsManagerClient:
    """Build a Secrets Manager client (once per process per location and keys, see ``rotator.stores.opener``).

    Without keys the default credential chain applies (environment, IRSA web identity, instance
    profile). ``timeout`` bounds connect and read, and botocore's own retries are cut to one so
    the store's short retries and the engine's backoff decide, not a hidden loop.
    """
    config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 1})
    session = boto3.session.Session()  # a session per client: boto3's default one is not thread-safe
    return session.client(
        "secretsmanager",
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=config,
    )


def access_key_from_secret(where: str, secret: Mapping[str, Any] | None, key: str) -> str:
    """One key of an access-key Secret (``where`` names the field and the Secret)."""
    return single_line_value(where, secret, key, "AWS key")

"""A policy's spec to its Target, reading the admin connection where the tenancy rules allow it.

An ``awsIamAccessKey`` acts with the AWS identity of the policy's store (``TargetContext.aws``,
the store opener's session: the namespace's, never the operator's); it has no Secret of its own.

The admin connection of a ``postgresRole`` comes from a Secret in the *policy's* namespace, and
only from one labelled ``rotator.dev/target-credential=true``: a namespace admin opts a Secret in,
so naming a Secret in a policy is not a way to make rotator use (or leak) it.

A ``vaultDatabase`` target talks to Vault through ``vault``: the session the policy's store logged
in with (the namespace's identity, DESIGN §6), handed over by the engine; never one of its own.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import SecretStr

from rotator.kube import Kube
from rotator.models import PermanentError, PolicyRef, reasons
from rotator.models.keys import TARGET_CREDENTIAL_LABEL
from rotator.models.spec import RotationPolicySpec, SecretKeyRef
from rotator.targets.base import AwsClients, PasswordTarget, Target
from rotator.targets.vault_database import VaultDatabaseTarget, VaultSession


def no_vault_session() -> None:
    """For callers without a store session: a ``vaultDatabase`` target then refuses by name."""


def no_aws() -> AwsClients | None:
    return None


@dataclass(frozen=True)
class TargetContext:
    """What a target may need from the running rotation besides its spec."""

    rotation_id: str = ""
    #: The store's AWS session, opened when first needed; None when the store is not on AWS.
    aws: Callable[[], AwsClients | None] = field(default=no_aws)
    #: The store's Vault session (``vaultDatabase``), likewise; None when the store is not Vault.
    vault: VaultSession = field(default=no_vault_session)


def open_target(
    kube: Kube,
    policy: PolicyRef,
    spec: RotationPolicySpec,
    generate: Callable[[], SecretStr],
    context: TargetContext = TargetContext(),
) -> Target:
    aws_key = spec.credential.aws_iam_access_key
    if aws_key is not None:
        # Imported here, like psycopg below: botocore is ~6 % of the operator's start-up imports.
        from rotator.targets.aws_iam import AwsIamAccessKeyTarget

        return AwsIamAccessKeyTarget(aws_key, context.aws, policy.owner, context.rotation_id)
    vault_database = spec.credential.vault_database
    if vault_database is not None:
        store = f"{spec.store_ref.kind} {spec.store_ref.name}"
        return VaultDatabaseTarget(vault_database, context.vault, store)
    postgres = spec.credential.postgres_role
    if postgres is not None:
        # Imported here: psycopg costs ~8 MiB of RSS that an operator without this target never needs.
        from rotator.targets.postgres import FIELD as POSTGRES_FIELD
        from rotator.targets.postgres import PostgresRoleTarget

        ref = postgres.connection_secret_ref
        field = f"{POSTGRES_FIELD}.connectionSecretRef"
        return PostgresRoleTarget(
            postgres, lambda: read_target_secret(kube, policy, ref, field), policy.owner, generate
        )
    return PasswordTarget(generate)


def read_target_secret(kube: Kube, policy: PolicyRef, ref: SecretKeyRef, field: str) -> SecretStr:
    where = f"{field}: Secret {policy.namespace}/{ref.name}"
    secret = kube.get_secret(policy.namespace, ref.name)
    if secret is None:
        raise PermanentError(reasons.TARGET_CREDENTIAL_MISSING, f"{where} not found")
    labels = (secret.get("metadata") or {}).get("labels") or {}
    if labels.get(TARGET_CREDENTIAL_LABEL) != "true":
        raise PermanentError(
            reasons.TARGET_CREDENTIAL_MISSING, f"{where} is not labelled {TARGET_CREDENTIAL_LABEL}=true"
        )
    encoded = (secret.get("data") or {}).get(ref.key)
    if not encoded:
        raise PermanentError(reasons.TARGET_CREDENTIAL_MISSING, f"{where} has no key {ref.key!r}")
    return SecretStr(base64.b64decode(encoded).decode(errors="replace").strip())

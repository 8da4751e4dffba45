"""What the engine needs from outside, injected (STYLE 2): clients, the store resolver and opener,
the clock's companions (id generator, fault hook) and the settings."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from rotator.kube import Kube
from rotator.metrics import Metrics
from rotator.models import PolicyRef, RotationPolicySpec, Settings
from rotator.steps.checkpoints import CheckpointHook, no_checkpoint
from rotator.stores.base import Store
from rotator.targets.base import AwsClients, Target
from rotator.targets.opener import TargetContext, open_target
from rotator.tenancy.resolve import ResolvedStore

StoreResolver = Callable[[PolicyRef, RotationPolicySpec], ResolvedStore]
"""``spec.storeRef`` + ``spec.path`` to a location the namespace may use
(``rotator.tenancy.resolver.StoreResolver`` in production: reads the store object)."""

StoreOpener = Callable[[PolicyRef, ResolvedStore], Store]
"""A resolved location to a Store, logged in as the namespace (``rotator.stores.opener.StoreOpener``)."""


TargetOpener = Callable[[Kube, PolicyRef, RotationPolicySpec, Callable[[], SecretStr], TargetContext], Target]
"""``spec.credential`` to the Target the steps drive (``rotator.targets.opener.open_target``)."""


VaultSessionOpener = Callable[[PolicyRef, ResolvedStore], Any | None]
"""The Vault client the store of a resolved location logs in with, as the namespace; None for a
store that is not Vault (``rotator.stores.opener.StoreOpener.vault_session``)."""


def no_vault_sessions(policy: PolicyRef, resolved: ResolvedStore) -> None:
    """Without a store opener there is no session to share."""


AwsSessionOpener = Callable[[PolicyRef, ResolvedStore], AwsClients | None]
"""The AWS identity a resolved store logs in as, for targets that act in AWS with it
(``rotator.stores.opener.StoreOpener.aws_session``); None when the store is not on AWS."""


def no_aws_session(policy: PolicyRef, resolved: ResolvedStore) -> AwsClients | None:
    return None


def new_rotation_id() -> str:
    return str(uuid.uuid4())


def ignore_auth_failure(policy: PolicyRef) -> None:
    """Without cached sessions there is nothing to drop."""


@dataclass(frozen=True)
class Deps:
    kube: Kube
    resolve_store: StoreResolver
    open_store: StoreOpener
    metrics: Metrics
    settings: Settings = field(default_factory=Settings)
    new_rotation_id: Callable[[], str] = new_rotation_id
    checkpoint: CheckpointHook = no_checkpoint
    #: Called when the store refused our identity, so the next open logs in afresh.
    store_auth_failed: Callable[[PolicyRef], None] = ignore_auth_failure
    open_target: TargetOpener = open_target
    #: The store's Vault session, shared with a ``vaultDatabase`` target (never our own identity).
    open_vault_session: VaultSessionOpener = no_vault_sessions
    aws_session: AwsSessionOpener = no_aws_session

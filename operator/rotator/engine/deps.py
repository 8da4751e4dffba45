"""What the engine needs from outside, injected (STYLE 2): clients, the store opener, the clock's
companions (id generator, fault hook) and the settings."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from rotator.kube import Kube
from rotator.metrics import Metrics
from rotator.models import PolicyRef, RotationPolicySpec, Settings
from rotator.steps.checkpoints import CheckpointHook, no_checkpoint
from rotator.stores.base import Store

StoreOpener = Callable[[PolicyRef, RotationPolicySpec], Store]
"""Turns a policy's store spec into a Store (``rotator.stores.opener.StoreOpener`` in production)."""


def new_rotation_id() -> str:
    return str(uuid.uuid4())


def ignore_auth_failure(policy: PolicyRef, spec: RotationPolicySpec) -> None:
    """Without cached sessions there is nothing to drop."""


@dataclass(frozen=True)
class Deps:
    kube: Kube
    open_store: StoreOpener
    metrics: Metrics
    settings: Settings = field(default_factory=Settings)
    new_rotation_id: Callable[[], str] = new_rotation_id
    checkpoint: CheckpointHook = no_checkpoint
    #: Called when the store refused our identity, so the next open logs in afresh.
    store_auth_failed: Callable[[PolicyRef, RotationPolicySpec], None] = ignore_auth_failure

"""Event and condition reasons: one constant per situation, shared by conditions and Events."""

from typing import Final

# Reasons a condition carries are defined beside the condition helper (bottom layer); the rest are
# Event-only or raised from the layers above.
from rotator.models.conditions import (
    DRY_RUN,
    INVALID_SPEC,
    READY,
    ROTATING,
    ROTATION_FAILED,
    ROTATION_ROLLED_BACK,
    ROTATION_SUCCEEDED,
    STORE_UNAVAILABLE,
    SUSPENDED,
)

STORE_NOT_OWNED: Final = "StoreNotOwned"
SECRET_NOT_OWNED: Final = "SecretNotOwned"
KUBE_ERROR: Final = "KubernetesError"
ROTATION_STARTED: Final = "RotationStarted"
ROTATION_IDLE: Final = "Idle"
STEP_COMPLETED: Final = "StepCompleted"
STEP_RETRYING: Final = "StepRetrying"
FORCE_IGNORED: Final = "ForceRotateIgnored"
CREDENTIAL_GENERATED: Final = "CredentialGenerated"
SECRET_SYNCED: Final = "SecretSynced"
SECRET_DRIFT_REPAIRED: Final = "SecretDriftRepaired"
WORKLOAD_RESTARTED: Final = "WorkloadRestarted"
TARGET_MISSING: Final = "RestartTargetMissing"
TARGET_NOT_CONSUMING: Final = "RestartTargetNotConsumingSecret"
VERIFY_FAILED: Final = "VerificationFailed"
CREDENTIAL_REVOKED: Final = "CredentialRevoked"
STORE_ADOPTED: Final = "StoreAdopted"
STORE_ERROR: Final = "StoreError"
STORE_AUTH_MISSING: Final = "StoreAuthMissing"
STORE_AUTH_FAILED: Final = "StoreAuthFailed"
STORE_UNSUPPORTED: Final = "StoreUnsupported"
STORE_KIND_CHANGED: Final = "StoreKindChangedDuringRotation"
INVALID_STATUS: Final = "InvalidStatus"
CURRENT_UNREADABLE: Final = "CurrentCredentialUnreadable"

__all__ = [
    "DRY_RUN",
    "INVALID_SPEC",
    "READY",
    "ROTATING",
    "ROTATION_FAILED",
    "ROTATION_ROLLED_BACK",
    "ROTATION_SUCCEEDED",
    "STORE_UNAVAILABLE",
    "SUSPENDED",
]

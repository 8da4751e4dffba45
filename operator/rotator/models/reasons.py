"""Condition and Event reasons: one CamelCase constant per situation (metav1.Condition's rule).

A condition and the Event posted with it carry the same reason, so ``kubectl describe`` and
``.status.conditions`` tell one story. Grouped by who says it; every layer imports from here.
"""

from typing import Final

# --- conditions: what the policy is --------------------------------------------------------------
READY: Final = "Ready"
IDLE: Final = "Idle"
ROTATING: Final = "Rotating"
SUSPENDED: Final = "Suspended"
DRY_RUN: Final = "DryRun"
INVALID_SPEC: Final = "InvalidSpec"
INVALID_STATUS: Final = "InvalidStatus"
RECONCILE_ERROR: Final = "ReconcileError"

# --- a rotation's life ---------------------------------------------------------------------------
ROTATION_STARTED: Final = "RotationStarted"
STEP_RETRYING: Final = "StepRetrying"
FORCE_IGNORED: Final = "ForceRotateIgnored"
WORKLOAD_RESTARTED: Final = "WorkloadRestarted"
VERIFY_FAILED: Final = "VerificationFailed"
ROTATION_SUCCEEDED: Final = "RotationSucceeded"
ROTATION_ROLLED_BACK: Final = "RotationRolledBack"
ROTATION_FAILED: Final = "RotationFailed"

# --- the managed Secret and the consumers --------------------------------------------------------
SECRET_NOT_OWNED: Final = "SecretNotOwned"
SECRET_DRIFT_REPAIRED: Final = "SecretDriftRepaired"
TARGET_MISSING: Final = "RestartTargetMissing"
TARGET_NOT_CONSUMING: Final = "RestartTargetNotConsumingSecret"
KUBE_ERROR: Final = "KubernetesError"

# --- the store -----------------------------------------------------------------------------------
STORE_ADOPTED: Final = "StoreAdopted"
STORE_NOT_OWNED: Final = "StoreNotOwned"
STORE_NOT_FOUND: Final = "StoreNotFound"
STORE_NOT_ALLOWED: Final = "StoreNotAllowed"
STORE_INVALID: Final = "StoreInvalid"
STORE_READY: Final = "StoreReady"
STORE_UNAVAILABLE: Final = "StoreUnavailable"
STORE_ERROR: Final = "StoreError"
STORE_AUTH_MISSING: Final = "StoreAuthMissing"
STORE_AUTH_FAILED: Final = "StoreAuthFailed"
STORE_UNSUPPORTED: Final = "StoreUnsupported"
STORE_KIND_CHANGED: Final = "StoreKindChangedDuringRotation"
CURRENT_UNREADABLE: Final = "CurrentCredentialUnreadable"
#: status.currentVersion is set but the store has no current version (a Vault restarted empty).
CREDENTIAL_MISSING: Final = "CredentialMissing"
CREDENTIAL_RESTORED: Final = "CredentialRestored"

# --- the credential's target (a database, an IAM user) -------------------------------------------
TARGET_UNAVAILABLE: Final = "TargetUnavailable"
TARGET_AUTH_FAILED: Final = "TargetAuthFailed"
TARGET_PRIVILEGES: Final = "TargetPrivilegesMissing"
TARGET_NOT_OWNED: Final = "TargetNotOwned"
TARGET_INVALID: Final = "TargetInvalid"
TARGET_CREDENTIAL_MISSING: Final = "TargetCredentialMissing"
#: The IAM user already has two access keys (IAM's limit) and rotator cannot prove either spare.
TARGET_KEY_LIMIT: Final = "TargetKeyLimitReached"
CREDENTIAL_FORMAT: Final = "CredentialFormatInvalid"
#: The current credential's Vault lease is gone (revoked or expired outside rotator).
LEASE_REVOKED: Final = "LeaseRevoked"
#: Vault capped a renewal at the role's max_ttl: the lease ends, a rotation comes before it.
LEASE_MAX_TTL: Final = "LeaseMaxTTLReached"

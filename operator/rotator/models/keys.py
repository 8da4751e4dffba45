"""Every annotation, label and store-tag key rotator reads or writes: one home for each.

Kubernetes keys live under ``rotator.dev/`` (Kopf's own bookkeeping uses ``kopf.rotator.dev/``,
see the handlers: Kopf hides annotations under its prefix from change detection, and
``rotator.dev/force-rotate`` must be seen as a change). Store tags name the same ideas inside Vault
custom metadata and AWS tags, so a human reading either sees one vocabulary.
"""

from typing import Final

DOMAIN: Final = "rotator.dev"

# --- on the RotationPolicy ------------------------------------------------------------------------
FORCE_ROTATE: Final = f"{DOMAIN}/force-rotate"
"""Annotation on a policy: each new value asks for one rotation now."""

FINALIZER: Final = f"{DOMAIN}/finalizer"
"""Kopf's finalizer name (only while a delete handler needs it; see the handlers)."""

STORE_CREDENTIAL_LABEL: Final = f"{DOMAIN}/store-credential"
"""Label a Secret must carry ("true") before a store may read a static credential from it."""

TARGET_CREDENTIAL_LABEL: Final = f"{DOMAIN}/target-credential"
"""Label a Secret must carry ("true") before a policy may use it as a target's admin connection."""

# --- on the managed Secret ------------------------------------------------------------------------
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "rotator"
POLICY_LABEL: Final = f"{DOMAIN}/policy"
"""Label on a managed Secret naming the policy that owns it."""
SECRET_VERSION: Final = f"{DOMAIN}/version"
"""Annotation on a managed Secret: the store version it holds."""
DATA_HASH: Final = f"{DOMAIN}/data-hash"
"""Annotation on a managed Secret: digest of its data, to detect drift without reading values."""

# --- on the Secret, on pod templates and in the store ----------------------------------------------
ROTATION_ID: Final = f"{DOMAIN}/rotation-id"
"""The rotation that wrote a Secret, restarted a workload (pod template) or wrote a store version."""

# --- on pod templates -----------------------------------------------------------------------------
RESTARTED_AT: Final = f"{DOMAIN}/restarted-at"
RESTARTED_FOR: Final = f"{DOMAIN}/restarted-for"
"""Pod-template annotation: JSON ``{secret name: rotation id}`` of the rotator-managed Secrets the
template reads, each with the rotation that had last written it when the restart was patched: the
pods this template starts read at least those values (see rotator.workloads.restarter)."""

# --- on workloads ---------------------------------------------------------------------------------
CONSUMER_LABEL: Final = f"{DOMAIN}/consumer"
CONSUMER: Final = "true"
"""Label on a workload (its metadata, never its pod template: the pods keep their labels) that
rotator has restarted: the operator watches exactly those workloads (a label-selected watch, never
every Deployment), so verify reads their rollouts from the watch cache and is woken by them."""

# --- store tags (Vault custom metadata, AWS tags) -------------------------------------------------
STORE_MANAGED_BY: Final = "managed-by"
STORE_OWNER: Final = f"{DOMAIN}/owner"
STORE_CURRENT_VERSION: Final = f"{DOMAIN}/current-version"
STORE_PREVIOUS_VERSION: Final = f"{DOMAIN}/previous-version"
STORE_FAILED_VERSIONS: Final = f"{DOMAIN}/failed-versions"
STORE_VERSIONS: Final = f"{DOMAIN}/versions"
"""AWS tag: the version ids rotator wrote (space separated, bounded), to tell adopted ones apart."""
TARGET_MINTING: Final = f"{DOMAIN}/minting"
"""IAM user tag: the rotation whose new access key is being created (a key a crash lost is found by it)."""
STORE_VALUE_KEY: Final = "value"
"""The key holding the credential inside a stored version's data."""

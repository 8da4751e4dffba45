"""``RotationStore`` / ``ClusterRotationStore`` spec: where credentials live and how to log in.

Admins define stores; policy authors only reference one (``spec.storeRef``) and name a path under
the store's prefix for their namespace (DESIGN §6). A namespaced store is usable only in its own
namespace; a cluster store says which namespaces may use it. Authentication is per namespace:
Vault Kubernetes auth and AWS web identity log in with a token minted (TokenRequest) for a service
account *of the policy's namespace*, so the store's own role bindings enforce the tenant
boundary; the operator's own token never leaves the cluster. Static credentials (a Vault token,
AWS keys) come from a Secret the store names: in the store's namespace (namespaced store) or in
the namespace the cluster store's admin wrote down, and only if that Secret is labelled
``rotator.dev/store-credential: "true"`` (so referencing a Secret is not a way to read it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Final, Self

from pydantic import AfterValidator, Field, StringConstraints, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from rotator.models.errors import InvalidSpecError
from rotator.models.memo import Memo
from rotator.models.paths import RESERVED_MOUNT_MESSAGE, is_reserved_mount
from rotator.models.spec import (
    AWS_REGION_PATTERN,
    MountPath,
    ResourceName,
    SecretKey,
    StoreKind,
    Url,
    _drop_nulls,
    _exactly_one,
    _field_path,
    _Model,
)

NAMESPACE_PLACEHOLDER: Final = "{namespace}"
PREFIX_PATTERN: Final = r"^(([A-Za-z0-9._-]|\{namespace\})+/)*([A-Za-z0-9._-]|\{namespace\})*$"
TEMPLATED_NAME_PATTERN: Final = r"^([A-Za-z0-9._@:/+=,-]|\{namespace\})+$"
AUDIENCE_PATTERN: Final = r"^[A-Za-z0-9._:/-]+$"
_DOT_SEGMENT = re.compile(r"(^|/)[.]{1,2}(/|$)")
# The CRD's rule on a cluster store's pathPrefix: the segment holding {namespace} ends with "/".
_CLOSED_NAMESPACE_SEGMENT = re.compile(r"[{]namespace[}][^/]*/")


def _no_dot_segments(value: str) -> str:
    """The CRD's CEL rule ``!self.matches('(^|/)[.]{1,2}(/|$)')``: no '.' or '..' segment (the
    HTTP client would normalise them and leave the mount or the prefix)."""
    if _DOT_SEGMENT.search(value):
        raise PydanticCustomError("dot_segment", "must not contain '.' or '..' segments")
    return value


def _not_reserved_mount(value: str) -> str:
    """Vault's own mounts (``rotator.models.paths.RESERVED_MOUNTS``, any case): a KV mount there
    would send the generated value (or a read) to Vault itself."""
    if is_reserved_mount(value):
        raise PydanticCustomError("reserved_mount", RESERVED_MOUNT_MESSAGE)
    return value


StoreMountPath = Annotated[MountPath, AfterValidator(_no_dot_segments)]
KvMount = Annotated[StoreMountPath, AfterValidator(_not_reserved_mount)]

TemplatedName = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=2048, pattern=TEMPLATED_NAME_PATTERN)
]
Audience = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=256, pattern=AUDIENCE_PATTERN)
]
Audiences = Annotated[tuple[Audience, ...], Field(min_length=1, max_length=8)]


class StoreRefKind(StrEnum):
    ROTATION_STORE = "RotationStore"
    CLUSTER_ROTATION_STORE = "ClusterRotationStore"


class ServiceAccountIdentity(_Model):
    """A service account *in the policy's namespace*; a token for it is minted per login."""

    service_account: ResourceName = "rotator"


class VaultKubernetesAuth(ServiceAccountIdentity):
    """Vault Kubernetes auth. ``role`` may contain ``{namespace}`` (one Vault role per tenant)."""

    role: TemplatedName
    mount_path: StoreMountPath = "kubernetes"
    audiences: Audiences = ("vault",)


class CredentialSecretRef(_Model):
    """A Secret holding a static credential. ``namespace``: required for a cluster store, and for
    a namespaced store absent or its own namespace."""

    name: ResourceName
    namespace: ResourceName | None = None
    key: SecretKey = "token"


class VaultAuth(_Model):
    kubernetes: VaultKubernetesAuth | None = None
    token_secret_ref: CredentialSecretRef | None = None

    @model_validator(mode="after")
    def _one(self) -> Self:
        _exactly_one(self, "exactly one of kubernetes or tokenSecretRef must be set")
        return self


class VaultConnection(_Model):
    address: Url
    ca_bundle: Annotated[str, StringConstraints(strict=True, max_length=65536)] | None = None
    namespace: Annotated[str, StringConstraints(strict=True, max_length=256)] | None = None
    kv_mount: KvMount = "secret"
    auth: VaultAuth


class AwsWebIdentityAuth(ServiceAccountIdentity):
    """AssumeRoleWithWebIdentity with a token minted for the namespace's service account."""

    role_arn: TemplatedName
    audiences: Audiences = ("sts.amazonaws.com",)


class AccessKeySecretRef(_Model):
    name: ResourceName
    namespace: ResourceName | None = None
    access_key_id_key: SecretKey = "AWS_ACCESS_KEY_ID"
    secret_access_key_key: SecretKey = "AWS_SECRET_ACCESS_KEY"


class AwsAuth(_Model):
    web_identity: AwsWebIdentityAuth | None = None
    access_key_secret_ref: AccessKeySecretRef | None = None

    @model_validator(mode="after")
    def _one(self) -> Self:
        _exactly_one(self, "exactly one of webIdentity or accessKeySecretRef must be set")
        return self


class AwsConnection(_Model):
    region: Annotated[str, StringConstraints(strict=True, max_length=32, pattern=AWS_REGION_PATTERN)]
    endpoint: Url | None = None
    auth: AwsAuth


class LabelSelector(_Model):
    """Keys are not checked (the CRD cannot constrain map keys): a key no namespace carries never
    matches, so a bad one only allows nothing."""

    match_labels: dict[
        Annotated[str, StringConstraints(strict=True)],
        Annotated[str, StringConstraints(strict=True, max_length=63)],
    ] = Field(default_factory=dict)


class AllowedNamespaces(_Model):
    """Which namespaces may use a cluster store: listed by name, or matched by labels (either)."""

    names: tuple[ResourceName, ...] = ()
    selector: LabelSelector | None = None

    def allows(self, namespace: str, labels: Mapping[str, str]) -> bool:
        if namespace in self.names:
            return True
        if self.selector is None or not self.selector.match_labels:
            return False
        return all(labels.get(k) == v for k, v in self.selector.match_labels.items())


PathPrefix = Annotated[
    str,
    StringConstraints(strict=True, max_length=256, pattern=PREFIX_PATTERN),
    AfterValidator(_no_dot_segments),
]


class _StoreSpec(_Model):
    vault: VaultConnection | None = None
    aws_secrets_manager: AwsConnection | None = None
    path_prefix: PathPrefix = "{namespace}/"

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.vault is None) == (self.aws_secrets_manager is None):
            raise PydanticCustomError("exactly_one", "exactly one of vault or awsSecretsManager must be set")
        return self

    @property
    def kind(self) -> StoreKind:
        return StoreKind.VAULT if self.vault is not None else StoreKind.AWS_SECRETS_MANAGER

    def prefix_for(self, namespace: str) -> str:
        return self.path_prefix.replace(NAMESPACE_PLACEHOLDER, namespace)


class RotationStoreSpec(_StoreSpec):
    """A store for policies of its own namespace."""


class ClusterRotationStoreSpec(_StoreSpec):
    """A store shared by the namespaces it allows, each confined to its own path prefix."""

    namespaces: AllowedNamespaces

    @model_validator(mode="after")
    def _confined(self) -> Self:
        # Without the namespace in the prefix every tenant would share one path space.
        if NAMESPACE_PLACEHOLDER not in self.path_prefix:
            raise PydanticCustomError("confined", "pathPrefix of a cluster store must contain {namespace}")
        # With "teams/{namespace}", namespace "shop" + path "pingx" and namespace "shopping" + path
        # "x" would meet at "teams/shoppingx": the namespace's segment must be closed by a "/".
        if not _CLOSED_NAMESPACE_SEGMENT.search(self.path_prefix):
            raise PydanticCustomError(
                "confined", "pathPrefix of a cluster store must end the segment holding {namespace} with '/'"
            )
        return self


#: Store specs validated lately, by kind and encoding: every reconcile resolves its store (a
#: frozen model; stores are few and seldom change).
_PARSED: Final[dict[StoreRefKind, Memo[RotationStoreSpec | ClusterRotationStoreSpec]]] = {
    kind: Memo(256) for kind in StoreRefKind
}


def parse_store_spec(
    kind: StoreRefKind, raw: Mapping[str, Any]
) -> RotationStoreSpec | ClusterRotationStoreSpec:
    """Validate a store's raw ``spec``; :class:`InvalidSpecError` names the first bad field."""
    return _PARSED[kind].get(raw, lambda fresh: _validate_store_spec(kind, fresh))


def _validate_store_spec(
    kind: StoreRefKind, raw: Mapping[str, Any]
) -> RotationStoreSpec | ClusterRotationStoreSpec:
    model = ClusterRotationStoreSpec if kind is StoreRefKind.CLUSTER_ROTATION_STORE else RotationStoreSpec
    try:
        return model.model_validate(_drop_nulls(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "field not declared in schema"
        raise InvalidSpecError(_field_path(tuple(first["loc"]), first.get("ctx")), message) from None

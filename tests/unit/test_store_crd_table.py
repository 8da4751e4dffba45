"""RotationStore / ClusterRotationStore: the CRDs and ``rotator.models.store`` must agree.

The same contract as tests/unit/test_crd_table.py, for the admin-defined stores: each row is a
whole store object; the CRD side prunes, defaults and validates as kube-apiserver does on create
(structural schema + CEL), the model side parses the pruned spec with ``parse_store_spec`` as the
operator does. Both accept, or both reject naming the same ``spec.…`` field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from rotator.models import InvalidSpecError
from rotator.models import paths as paths_mod
from rotator.models import spec as spec_mod
from rotator.models import store as store_mod
from rotator.models.store import StoreRefKind, parse_store_spec
from rotator.sandbox.schema_validation import apply_defaults, prune, validate

CRD_PATH = Path(__file__).resolve().parents[2] / "crds" / "rotationstores.rotator.dev.yaml"
CRDS = {doc["spec"]["names"]["kind"]: doc for doc in yaml.safe_load_all(CRD_PATH.read_text()) if doc}
SCHEMAS = {kind: crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"] for kind, crd in CRDS.items()}
MODELS = {
    "RotationStore": store_mod.RotationStoreSpec,
    "ClusterRotationStore": store_mod.ClusterRotationStoreSpec,
}

Obj = dict[str, Any]
ROLE_ARN = "arn:aws:iam::123456789012:role/rotator-{namespace}"


def _store(kind: str, spec: Obj, name: str = "vault") -> Obj:
    metadata: Obj = {"name": name}
    if kind == "RotationStore":
        metadata["namespace"] = "shop"
    return {"apiVersion": "rotator.dev/v1alpha1", "kind": kind, "metadata": metadata, "spec": spec}


def vault_token() -> Obj:
    """The smallest store: Vault with a token from a (labelled) Secret of its own namespace."""
    return _store(
        "RotationStore",
        {
            "vault": {
                "address": "http://vault.vault:8200",
                "auth": {"tokenSecretRef": {"name": "vault-token"}},
            }
        },
    )


def vault_kubernetes() -> Obj:
    """Vault Kubernetes auth, one Vault role per namespace."""
    return _store(
        "RotationStore",
        {
            "pathPrefix": "teams/{namespace}/",
            "vault": {
                "address": "https://vault.example:8200/",
                "auth": {"kubernetes": {"role": "rotator-{namespace}"}},
            },
        },
    )


def aws_web_identity() -> Obj:
    return _store(
        "RotationStore",
        {"awsSecretsManager": {"region": "eu-west-1", "auth": {"webIdentity": {"roleArn": ROLE_ARN}}}},
        name="aws",
    )


def aws_access_keys() -> Obj:
    return _store(
        "RotationStore",
        {
            "awsSecretsManager": {
                "region": "us-east-1",
                "endpoint": "http://127.0.0.1:5000",
                "auth": {"accessKeySecretRef": {"name": "aws-keys"}},
            }
        },
        name="aws",
    )


def cluster_names() -> Obj:
    """A cluster store shared by two named namespaces, each below its own prefix."""
    obj = vault_kubernetes()
    del obj["metadata"]["namespace"]
    obj["kind"] = "ClusterRotationStore"
    obj["spec"]["namespaces"] = {"names": ["shop", "billing"]}
    return obj


def cluster_selector() -> Obj:
    obj = cluster_names()
    obj["spec"]["namespaces"] = {"selector": {"matchLabels": {"rotator.dev/tenant": "true"}}}
    return obj


def edit(base: Callable[[], Obj], change: Callable[[Obj], object]) -> Callable[[], Obj]:
    """A row's object: ``base()`` with ``change`` applied to its ``spec``."""

    def build() -> Obj:
        obj = base()
        change(obj["spec"])
        return obj

    return build


def _vault(change: Callable[[Obj], object]) -> Callable[[Obj], object]:
    return lambda s: change(s["vault"])


def _k8s(change: Callable[[Obj], object]) -> Callable[[Obj], object]:
    return lambda s: change(s["vault"]["auth"]["kubernetes"])


def _aws(change: Callable[[Obj], object]) -> Callable[[Obj], object]:
    return lambda s: change(s["awsSecretsManager"])


VT, VK, AW, AK, CN, CS = (
    vault_token,
    vault_kubernetes,
    aws_web_identity,
    aws_access_keys,
    cluster_names,
    cluster_selector,
)

GOOD: list[Any] = [
    pytest.param(VT, id="vault-token"),
    pytest.param(VK, id="vault-kubernetes-role-per-namespace"),
    pytest.param(
        edit(
            VK,
            _k8s(
                lambda k: k.update(
                    mountPath="k8s/cluster-1", serviceAccount="secret-rotator", audiences=["vault", "openbao"]
                )
            ),
        ),
        id="vault-kubernetes-all-fields",
    ),
    pytest.param(
        edit(
            VT,
            _vault(
                lambda v: v.update(
                    caBundle="-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                    namespace="team-a/",
                    kvMount="kv/v2",
                )
            ),
        ),
        id="vault-ca-namespace-mount",
    ),
    pytest.param(
        edit(VT, _vault(lambda v: v["auth"]["tokenSecretRef"].update(namespace="shop", key="vault.token"))),
        id="vault-token-own-namespace-and-key",
    ),
    pytest.param(AW, id="aws-web-identity"),
    pytest.param(
        edit(
            AW, _aws(lambda a: a["auth"]["webIdentity"].update(serviceAccount="rotator", audiences=["sts"]))
        ),
        id="aws-web-identity-all-fields",
    ),
    pytest.param(AK, id="aws-access-keys-endpoint"),
    pytest.param(
        edit(
            AK,
            _aws(
                lambda a: a["auth"]["accessKeySecretRef"].update(
                    accessKeyIdKey="id", secretAccessKeyKey="key"
                )
            ),
        ),
        id="aws-access-keys-custom-keys",
    ),
    pytest.param(edit(VT, lambda s: s.update(pathPrefix="")), id="namespaced-no-prefix"),
    pytest.param(edit(VT, lambda s: s.update(pathPrefix="shop/apps")), id="namespaced-fixed-prefix"),
    pytest.param(CN, id="cluster-names"),
    pytest.param(CS, id="cluster-selector"),
    pytest.param(
        edit(CN, lambda s: s["namespaces"].update(selector={"matchLabels": {"team": "a", "tier": "prod"}})),
        id="cluster-names-and-selector",
    ),
    pytest.param(edit(CN, lambda s: s.pop("pathPrefix")), id="cluster-default-prefix"),
    pytest.param(edit(CN, lambda s: s.update(pathPrefix="kv-{namespace}/")), id="cluster-prefix-in-segment"),
    pytest.param(
        edit(
            CN,
            lambda s: (
                s.pop("vault"),
                s.update(awsSecretsManager=aws_web_identity()["spec"]["awsSecretsManager"]),
            ),
        ),
        id="cluster-aws-web-identity",
    ),
    pytest.param(
        edit(CN, _vault(lambda v: v.update(auth={"tokenSecretRef": {"name": "t", "namespace": "rotator"}}))),
        id="cluster-token-in-named-namespace",
    ),
    pytest.param(edit(VT, _vault(lambda v: v.update(kvMount="sys-kv/team.a"))), id="mount-named-like-sys"),
    pytest.param(edit(VT, _vault(lambda v: v.update(kvMount="tokens/Sys"))), id="mount-named-like-token"),
    pytest.param(
        edit(CS, lambda s: s["namespaces"]["selector"].update(matchLabels={"example.com/tier": ""})),
        id="cluster-selector-prefixed-key-empty-value",
    ),
    pytest.param(
        edit(CN, lambda s: s.update(pathPrefix="{namespace}-kv/apps")), id="cluster-prefix-open-tail"
    ),
    pytest.param(edit(VT, lambda s: s.update(surprise=1)), id="unknown-field-pruned"),
]

BAD: list[Any] = [
    # backends
    pytest.param(edit(VT, lambda s: s.pop("vault")), "spec", id="neither-backend"),
    pytest.param(
        edit(VT, lambda s: s.update(awsSecretsManager=aws_web_identity()["spec"]["awsSecretsManager"])),
        "spec",
        id="both-backends",
    ),
    pytest.param(
        edit(CN, lambda s: s.update(awsSecretsManager=aws_web_identity()["spec"]["awsSecretsManager"])),
        "spec",
        id="cluster-both-backends",
    ),
    # vault connection
    pytest.param(edit(VT, _vault(lambda v: v.pop("address"))), "spec.vault.address", id="vault-no-address"),
    *[
        pytest.param(
            edit(VT, _vault(lambda v, a=address: v.update(address=a))),
            "spec.vault.address",
            id=f"address-{name}",
        )
        for name, address in [
            ("no-scheme", "vault:8200"),
            ("ftp", "ftp://vault:8200"),
            ("space", "http://vault :8200"),
            ("no-host", "http:///v1"),
            ("query", "http://vault?x=1"),
            ("too-long", "http://v/" + "a" * 2040),
        ]
    ],
    pytest.param(edit(VT, _vault(lambda v: v.pop("auth"))), "spec.vault.auth", id="vault-no-auth"),
    pytest.param(edit(VT, _vault(lambda v: v.update(auth={}))), "spec.vault.auth", id="vault-no-auth-method"),
    pytest.param(
        edit(VT, _vault(lambda v: v["auth"].update(kubernetes={"role": "r"}))),
        "spec.vault.auth",
        id="vault-both-auth-methods",
    ),
    pytest.param(
        edit(VT, _vault(lambda v: v.update(kvMount="/secret"))), "spec.vault.kvMount", id="mount-slash"
    ),
    pytest.param(edit(VT, _vault(lambda v: v.update(kvMount=""))), "spec.vault.kvMount", id="mount-empty"),
    *[
        pytest.param(
            edit(VT, _vault(lambda v, m=mount: v.update(kvMount=m))),
            "spec.vault.kvMount",
            id=f"mount-{mount}",
        )
        for mount in [
            "sys",
            "identity",
            "cubbyhole",
            "auth",
            "token",
            "Sys",
            "TOKEN/kv",
            "auth/token",
            "secret/..",
            "../sys",
            ".",
        ]
    ],
    pytest.param(
        edit(VT, _vault(lambda v: v["auth"]["tokenSecretRef"].pop("name"))),
        "spec.vault.auth.tokenSecretRef.name",
        id="token-ref-no-name",
    ),
    pytest.param(
        edit(VT, _vault(lambda v: v["auth"]["tokenSecretRef"].update(key="a b"))),
        "spec.vault.auth.tokenSecretRef.key",
        id="token-ref-key",
    ),
    pytest.param(
        edit(VT, _vault(lambda v: v["auth"]["tokenSecretRef"].update(namespace="Shop"))),
        "spec.vault.auth.tokenSecretRef.namespace",
        id="token-ref-namespace",
    ),
    # vault kubernetes auth
    pytest.param(
        edit(VK, _k8s(lambda k: k.pop("role"))), "spec.vault.auth.kubernetes.role", id="k8s-no-role"
    ),
    pytest.param(
        edit(VK, _k8s(lambda k: k.update(role=""))), "spec.vault.auth.kubernetes.role", id="k8s-role-empty"
    ),
    pytest.param(
        edit(VK, _k8s(lambda k: k.update(role="rotator-{name}"))),
        "spec.vault.auth.kubernetes.role",
        id="k8s-role-unknown-placeholder",
    ),
    pytest.param(
        edit(VK, _k8s(lambda k: k.update(mountPath="../token"))),
        "spec.vault.auth.kubernetes.mountPath",
        id="k8s-mount-path",
    ),
    pytest.param(
        edit(VK, _k8s(lambda k: k.update(serviceAccount="Rotator"))),
        "spec.vault.auth.kubernetes.serviceAccount",
        id="k8s-service-account",
    ),
    pytest.param(
        edit(VK, _k8s(lambda k: k.update(audiences=[]))),
        "spec.vault.auth.kubernetes.audiences",
        id="audiences-empty",
    ),
    pytest.param(
        edit(VK, _k8s(lambda k: k.update(audiences=[f"a{i}" for i in range(9)]))),
        "spec.vault.auth.kubernetes.audiences",
        id="audiences-9",
    ),
    pytest.param(
        edit(VK, _k8s(lambda k: k.update(audiences=["vault", "two words"]))),
        "spec.vault.auth.kubernetes.audiences[1]",
        id="audience-space",
    ),
    pytest.param(
        edit(VK, _k8s(lambda k: k.update(audiences=[""]))),
        "spec.vault.auth.kubernetes.audiences[0]",
        id="audience-empty",
    ),
    pytest.param(
        edit(VK, _k8s(lambda k: k.update(audiences="vault"))),
        "spec.vault.auth.kubernetes.audiences",
        id="audiences-not-list",
    ),
    # aws
    pytest.param(
        edit(AW, _aws(lambda a: a.update(region="Europe"))), "spec.awsSecretsManager.region", id="aws-region"
    ),
    pytest.param(
        edit(AW, _aws(lambda a: a.pop("region"))), "spec.awsSecretsManager.region", id="aws-no-region"
    ),
    pytest.param(
        edit(AK, _aws(lambda a: a.update(endpoint="127.0.0.1:5000"))),
        "spec.awsSecretsManager.endpoint",
        id="aws-endpoint",
    ),
    pytest.param(
        edit(AW, _aws(lambda a: a.update(auth={}))), "spec.awsSecretsManager.auth", id="aws-no-auth-method"
    ),
    pytest.param(
        edit(AW, _aws(lambda a: a["auth"].update(accessKeySecretRef={"name": "k"}))),
        "spec.awsSecretsManager.auth",
        id="aws-both-auth-methods",
    ),
    pytest.param(
        edit(AW, _aws(lambda a: a["auth"]["webIdentity"].pop("roleArn"))),
        "spec.awsSecretsManager.auth.webIdentity.roleArn",
        id="aws-no-role-arn",
    ),
    pytest.param(
        edit(AW, _aws(lambda a: a["auth"]["webIdentity"].update(audiences=[]))),
        "spec.awsSecretsManager.auth.webIdentity.audiences",
        id="aws-audiences-empty",
    ),
    pytest.param(
        edit(AK, _aws(lambda a: a["auth"]["accessKeySecretRef"].update(accessKeyIdKey="a/b"))),
        "spec.awsSecretsManager.auth.accessKeySecretRef.accessKeyIdKey",
        id="aws-key-name",
    ),
    # path prefix
    pytest.param(
        edit(VT, lambda s: s.update(pathPrefix="/shop/")), "spec.pathPrefix", id="prefix-leading-slash"
    ),
    pytest.param(
        edit(VT, lambda s: s.update(pathPrefix="shop//a/")), "spec.pathPrefix", id="prefix-empty-segment"
    ),
    pytest.param(edit(VT, lambda s: s.update(pathPrefix="shop/../")), "spec.pathPrefix", id="prefix-dotdot"),
    pytest.param(edit(VT, lambda s: s.update(pathPrefix="./shop/")), "spec.pathPrefix", id="prefix-dot"),
    pytest.param(
        edit(VT, lambda s: s.update(pathPrefix="{ns}/")), "spec.pathPrefix", id="prefix-placeholder"
    ),
    pytest.param(edit(VT, lambda s: s.update(pathPrefix="a" * 257)), "spec.pathPrefix", id="prefix-too-long"),
    # cluster store
    pytest.param(edit(CN, lambda s: s.pop("namespaces")), "spec.namespaces", id="cluster-no-namespaces"),
    pytest.param(
        edit(CN, lambda s: s.update(pathPrefix="shared/")), "spec", id="cluster-prefix-without-namespace"
    ),
    pytest.param(edit(CN, lambda s: s.update(pathPrefix="")), "spec", id="cluster-empty-prefix"),
    pytest.param(
        edit(CN, lambda s: s.update(pathPrefix="teams/{namespace}")), "spec", id="cluster-prefix-open-segment"
    ),
    pytest.param(
        edit(CN, lambda s: s["namespaces"].update(names=["Shop"])),
        "spec.namespaces.names[0]",
        id="cluster-namespace-name",
    ),
    pytest.param(
        edit(CN, lambda s: s["namespaces"].update(names="shop")),
        "spec.namespaces.names",
        id="cluster-names-not-list",
    ),
    pytest.param(
        edit(CS, lambda s: s["namespaces"]["selector"].update(matchLabels={"team": "x" * 64})),
        "spec.namespaces.selector.matchLabels.team",
        id="cluster-label-value-too-long",
    ),
    pytest.param(
        edit(CS, lambda s: s["namespaces"]["selector"].update(matchLabels={"team": 1})),
        "spec.namespaces.selector.matchLabels.team",
        id="cluster-label-value-not-string",
    ),
]


# kube-apiserver names a map entry's structural error ``matchLabels.team`` (the real-server run of
# this table in tests/realkube proves it) and so do the emulator and the models.
MAP_ENTRY_ROWS = {"cluster-label-value-too-long", "cluster-label-value-not-string"}


def crd_admit(obj: Obj) -> tuple[Obj, list[str]]:
    """What kube-apiserver stores and the error fields it reports."""
    schema = SCHEMAS[obj["kind"]]
    stored = apply_defaults(schema, prune(schema, obj))
    return stored, [e.field for e in validate(schema, stored)]


def model_field(kind: str, spec: Obj) -> str | None:
    error: InvalidSpecError | None = None
    try:
        parse_store_spec(StoreRefKind(kind), spec)
    except InvalidSpecError as exc:
        error = exc
    if error is None:
        return None
    assert str(error) == f"{error.field}: {error.message}"
    return error.field


def _pruned_spec(obj: Obj) -> Obj:
    spec: Obj = prune(SCHEMAS[obj["kind"]], obj)["spec"]
    return spec


@pytest.mark.parametrize("build", GOOD)
def test_both_accept(build: Callable[[], Obj]) -> None:
    obj = build()
    stored, crd_errors = crd_admit(obj)
    assert crd_errors == []
    kind, spec = obj["kind"], _pruned_spec(obj)
    assert model_field(kind, spec) is None
    # The CRD's defaults and the models' defaults are the same defaults.
    assert parse_store_spec(StoreRefKind(kind), stored["spec"]) == parse_store_spec(StoreRefKind(kind), spec)


@pytest.mark.parametrize(("build", "field"), BAD)
def test_both_reject_naming_the_field(build: Callable[[], Obj], field: str) -> None:
    obj = build()
    _, crd_errors = crd_admit(obj)
    assert field in crd_errors, crd_errors
    assert model_field(obj["kind"], _pruned_spec(obj)) == field


@pytest.mark.parametrize(("build", "field"), BAD)
def test_no_rule_fails_to_evaluate(build: Callable[[], Obj], field: str) -> None:
    obj = build()
    stored, _ = crd_admit(obj)
    errors = validate(SCHEMAS[obj["kind"]], stored)
    assert [str(e) for e in errors if "rule evaluation error" in e.detail] == []


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_the_kinds_differ_only_in_the_cluster_rules(kind: str) -> None:
    """A namespaced store may omit namespaces and use any prefix; a cluster store may not."""
    obj = edit(VT, lambda s: s.update(pathPrefix="shared/"))()
    obj["kind"] = kind
    if kind == "ClusterRotationStore":
        del obj["metadata"]["namespace"]
    _, errors = crd_admit(obj)
    expected = ["spec.namespaces"] if kind == "ClusterRotationStore" else []
    assert errors[:1] == expected
    assert model_field(kind, _pruned_spec(obj)) == (expected[0] if expected else None)


@pytest.mark.parametrize(
    ("build", "field", "message"),
    [
        (
            edit(VT, lambda s: s.update(pathPrefix="a/../")),
            "spec.pathPrefix",
            "must not contain '.' or '..' segments",
        ),
        (
            edit(VT, _vault(lambda v: v.update(kvMount="cubbyhole"))),
            "spec.vault.kvMount",
            "must not be a Vault system mount (auth, cubbyhole, identity, sys, token)",
        ),
        (
            edit(VK, _k8s(lambda k: k.update(mountPath="k8s/.."))),
            "spec.vault.auth.kubernetes.mountPath",
            "must not contain '.' or '..' segments",
        ),
        (
            edit(CN, lambda s: s.update(pathPrefix="shared/")),
            "spec",
            "pathPrefix of a cluster store must contain {namespace}",
        ),
        (
            edit(CN, lambda s: s.update(pathPrefix="teams/{namespace}")),
            "spec",
            "pathPrefix of a cluster store must end the segment holding {namespace} with '/'",
        ),
    ],
)
def test_rules_say_the_same_in_both(build: Callable[[], Obj], field: str, message: str) -> None:
    obj = build()
    stored, _ = crd_admit(obj)
    crd = [e.detail for e in validate(SCHEMAS[obj["kind"]], stored) if e.field == field]
    assert crd == [message]
    with pytest.raises(InvalidSpecError) as refused:
        parse_store_spec(StoreRefKind(obj["kind"]), _pruned_spec(obj))
    assert (refused.value.field, refused.value.message) == (field, message)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_the_crd_refuses_exactly_the_models_reserved_mounts(kind: str) -> None:
    """One list (``rotator.models.paths.RESERVED_MOUNTS``): the CRD's CEL rule on kvMount is the
    rule derived from it, word for word, and names the same mounts as the models refuse."""
    rules = _schema_at(kind, "vault.kvMount")["x-kubernetes-validations"]
    reserved = [r for r in rules if "system mount" in r["message"]]
    assert reserved == [{"rule": paths_mod.RESERVED_MOUNT_RULE, "message": paths_mod.RESERVED_MOUNT_MESSAGE}]
    listed = re.search(r"\^\(([^)]*)\)", reserved[0]["rule"])
    assert listed is not None
    assert tuple(listed.group(1).split("|")) == paths_mod.RESERVED_MOUNTS
    for mount in paths_mod.RESERVED_MOUNTS:
        for spelling in (mount, mount.upper(), mount.capitalize(), f"{mount}/kv"):
            obj = edit(VT, _vault(lambda v, m=spelling: v.update(kvMount=m)))()
            obj["kind"] = kind
            if kind == "ClusterRotationStore":
                del obj["metadata"]["namespace"]
                obj["spec"]["namespaces"] = {"names": ["shop"]}
            assert crd_admit(obj)[1] == ["spec.vault.kvMount"], spelling
            assert model_field(kind, _pruned_spec(obj)) == "spec.vault.kvMount", spelling
            with pytest.raises(InvalidSpecError):
                paths_mod.validate_kv_mount(spelling)


def test_defaults_are_the_documented_ones() -> None:
    stored, errors = crd_admit(vault_kubernetes())
    assert errors == []
    spec = stored["spec"]
    assert spec["vault"]["kvMount"] == "secret"
    assert spec["vault"]["auth"]["kubernetes"] == {
        "role": "rotator-{namespace}",
        "mountPath": "kubernetes",
        "serviceAccount": "rotator",
        "audiences": ["vault"],
    }
    assert crd_admit(vault_token())[0]["spec"]["pathPrefix"] == "{namespace}/"
    assert crd_admit(vault_token())[0]["spec"]["vault"]["auth"]["tokenSecretRef"]["key"] == "token"
    aws = crd_admit(aws_web_identity())[0]["spec"]["awsSecretsManager"]["auth"]["webIdentity"]
    assert aws["audiences"] == ["sts.amazonaws.com"]
    assert aws["serviceAccount"] == "rotator"
    keys = crd_admit(aws_access_keys())[0]["spec"]["awsSecretsManager"]["auth"]["accessKeySecretRef"]
    assert (keys["accessKeyIdKey"], keys["secretAccessKeyKey"]) == (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    )


def test_map_entries_are_named_as_the_real_server_names_them() -> None:
    """``matchLabels.team``, never ``matchLabels[team]``: the rows exist and both sides agree."""
    rows = [row for row in BAD if row.id in MAP_ENTRY_ROWS]
    assert len(rows) == len(MAP_ENTRY_ROWS)
    for row in rows:
        build, field = row.values
        obj = build()
        assert field.endswith(".matchLabels.team")
        assert model_field(obj["kind"], _pruned_spec(obj)) == field
        _, crd_errors = crd_admit(obj)
        assert crd_errors[0] == field


def test_table_is_large_enough() -> None:
    assert len(GOOD) >= 15
    assert len(BAD) >= 40
    assert {"RotationStore", "ClusterRotationStore"} == {row.values[0]()["kind"] for row in GOOD}
    assert {"RotationStore", "ClusterRotationStore"} == {row.values[0]()["kind"] for row in BAD}


def _schema_at(kind: str, path: str) -> Any:
    node = SCHEMAS[kind]["properties"]["spec"]
    for part in path.split("."):
        node = node["items"] if part == "[]" else node["properties"][part]
    return node


_SHARED_PATTERNS = [
    ("pathPrefix", store_mod.PREFIX_PATTERN),
    ("vault.address", spec_mod.URL_PATTERN),
    ("vault.kvMount", spec_mod.VAULT_PATH_PATTERN),
    ("vault.auth.kubernetes.role", store_mod.TEMPLATED_NAME_PATTERN),
    ("vault.auth.kubernetes.mountPath", spec_mod.VAULT_PATH_PATTERN),
    ("vault.auth.kubernetes.serviceAccount", spec_mod.DNS_SUBDOMAIN_PATTERN),
    ("vault.auth.kubernetes.audiences.[]", store_mod.AUDIENCE_PATTERN),
    ("vault.auth.tokenSecretRef.name", spec_mod.DNS_SUBDOMAIN_PATTERN),
    ("vault.auth.tokenSecretRef.namespace", spec_mod.DNS_SUBDOMAIN_PATTERN),
    ("vault.auth.tokenSecretRef.key", spec_mod.SECRET_KEY_PATTERN),
    ("awsSecretsManager.region", spec_mod.AWS_REGION_PATTERN),
    ("awsSecretsManager.endpoint", spec_mod.URL_PATTERN),
    ("awsSecretsManager.auth.webIdentity.roleArn", store_mod.TEMPLATED_NAME_PATTERN),
    ("awsSecretsManager.auth.webIdentity.audiences.[]", store_mod.AUDIENCE_PATTERN),
    ("awsSecretsManager.auth.accessKeySecretRef.name", spec_mod.DNS_SUBDOMAIN_PATTERN),
]


@pytest.mark.parametrize(
    ("kind", "path", "pattern"),
    [(kind, path, pattern) for kind in sorted(MODELS) for path, pattern in _SHARED_PATTERNS]
    + [("ClusterRotationStore", "namespaces.names.[]", spec_mod.DNS_SUBDOMAIN_PATTERN)],
)
def test_crd_patterns_are_the_models_patterns(kind: str, path: str, pattern: str) -> None:
    assert _schema_at(kind, path)["pattern"] == pattern
    re.compile(pattern)


def _crd_fields(node: Any, prefix: str) -> set[str]:
    out: set[str] = set()
    for name, sub in (node.get("properties") or {}).items():
        out.add(f"{prefix}{name}")
        out |= _crd_fields(sub.get("items", sub), f"{prefix}{name}.")
    return out


def _model_fields(model: Any, prefix: str) -> set[str]:
    out: set[str] = set()
    for name, info in model.model_fields.items():
        alias = info.alias or name
        out.add(f"{prefix}{alias}")
        for arg in _model_types(info.annotation):
            out |= _model_fields(arg, f"{prefix}{alias}.")
    return out


def _model_types(annotation: Any) -> list[Any]:
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[Any] = []
    for arg in getattr(annotation, "__args__", ()) or ():
        found += _model_types(arg)
    return found


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_every_spec_field_is_in_both(kind: str) -> None:
    """A field added to one side only would be pruned by kube or forbidden by the models."""
    crd = _crd_fields(SCHEMAS[kind]["properties"]["spec"], "")
    assert crd == _model_fields(MODELS[kind], "")
    assert ("namespaces" in crd) == (kind == "ClusterRotationStore")


@pytest.mark.parametrize(
    ("kind", "scope", "plural", "short", "columns"),
    [
        ("RotationStore", "Namespaced", "rotationstores", "rstore", ["Prefix", "Ready", "Reason", "Age"]),
        (
            "ClusterRotationStore",
            "Cluster",
            "clusterrotationstores",
            "crstore",
            ["Prefix", "Namespaces", "Ready", "Reason", "Age"],
        ),
    ],
)
def test_crd_metadata_names_and_columns(
    kind: str, scope: str, plural: str, short: str, columns: list[str]
) -> None:
    crd = CRDS[kind]
    assert crd["metadata"]["name"] == f"{plural}.rotator.dev"
    assert crd["spec"]["group"] == "rotator.dev"
    assert crd["spec"]["scope"] == scope
    names = crd["spec"]["names"]
    assert (names["plural"], names["singular"], names["listKind"]) == (plural, kind.lower(), f"{kind}List")
    # "rs" is ReplicaSet's short name: kubectl would resolve it ambiguously.
    assert names["shortNames"] == [short]
    assert "rs" not in names["shortNames"]
    assert names["categories"] == ["rotator"]
    (version,) = crd["spec"]["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    printed = version["additionalPrinterColumns"]
    assert [c["name"] for c in printed] == columns
    by_name = {c["name"]: c for c in printed}
    assert by_name["Prefix"]["jsonPath"] == ".spec.pathPrefix"
    assert by_name["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert by_name["Age"]["type"] == "date"


def test_both_store_crds_are_one_file_and_disjoint_from_the_policy_crd() -> None:
    assert sorted(CRDS) == ["ClusterRotationStore", "RotationStore"]
    short = [s for crd in CRDS.values() for s in crd["spec"]["names"]["shortNames"]]
    policy = yaml.safe_load((CRD_PATH.parent / "rotationpolicies.rotator.dev.yaml").read_text())
    assert not set(short) & set(policy["spec"]["names"]["shortNames"])


def test_status_with_a_ready_condition_survives_pruning() -> None:
    status = {
        "observedGeneration": 2,
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "StoreAuthFailed",
                "message": "permission denied",
                "lastTransitionTime": "2026-11-27T20:00:00Z",
                "observedGeneration": 2,
            }
        ],
    }
    for build in (vault_token, cluster_selector):
        stored, errors = crd_admit(build() | {"status": status})
        assert errors == []
        assert stored["status"] == status

"""rotator.tenancy.resolve: from storeRef + path to a location the namespace may use (pure).

Every refusal is a PermanentError whose reason is a constant and whose message names what a
human must change; pin() keeps a running rotation on the location it started with.
"""

from __future__ import annotations

from typing import Any

import pytest

from rotator.models import PermanentError, RotationPolicySpec, StoreKind, parse_spec, reasons
from rotator.models.store import ClusterRotationStoreSpec, RotationStoreSpec, StoreRefKind
from rotator.tenancy.resolve import ResolvedStore, pin, resolve, store_path

NS = "shop"
VAULT_ADDRESS = "http://vault.vault:8200"
TENANT = {"rotator.dev/tenant": "true"}

Obj = dict[str, Any]


def policy(path: str = "orders-db", kind: str = "RotationStore", name: str = "vault") -> RotationPolicySpec:
    return parse_spec(
        {
            "secret": {"name": "orders-db-credentials"},
            "credential": {"password": {}},
            "storeRef": {"kind": kind, "name": name},
            "path": path,
        }
    )


def cluster_policy(path: str = "orders-db", name: str = "shared") -> RotationPolicySpec:
    return policy(path, kind="ClusterRotationStore", name=name)


def vault_store(prefix: str | None = None, **vault: Any) -> Obj:
    spec: Obj = {
        "vault": {"address": VAULT_ADDRESS, "auth": {"tokenSecretRef": {"name": "vault-token"}}, **vault}
    }
    if prefix is not None:
        spec["pathPrefix"] = prefix
    return {"kind": "RotationStore", "metadata": {"name": "vault", "namespace": NS}, "spec": spec}


def aws_store(endpoint: str | None = "http://127.0.0.1:5000") -> Obj:
    aws: Obj = {"region": "eu-west-1", "auth": {"accessKeySecretRef": {"name": "aws-keys"}}}
    if endpoint:
        aws["endpoint"] = endpoint
    return {
        "kind": "RotationStore",
        "metadata": {"name": "aws", "namespace": NS},
        "spec": {"awsSecretsManager": aws},
    }


def cluster_store(prefix: str = "teams/{namespace}/", **namespaces: Any) -> Obj:
    return {
        "kind": "ClusterRotationStore",
        "metadata": {"name": "shared"},
        "spec": {
            "pathPrefix": prefix,
            "vault": {"address": VAULT_ADDRESS, "auth": {"kubernetes": {"role": "rotator-{namespace}"}}},
            "namespaces": namespaces or {"names": [NS]},
        },
    }


def refused(reason: str, match: str, call: Any, *args: Any, **kwargs: Any) -> PermanentError:
    with pytest.raises(PermanentError, match=match) as caught:
        call(*args, **kwargs)
    assert caught.value.reason == reason
    return caught.value


# ------------------------------------------------------------------------------------- found


def test_a_namespaced_store_resolves_below_its_prefix_for_the_namespace() -> None:
    resolved = resolve(NS, policy(), vault_store(), {})
    assert resolved.path == "shop/orders-db"  # default prefix "{namespace}/"
    assert resolved.kind is StoreKind.VAULT
    assert (resolved.ref_kind, resolved.ref_name, resolved.ref) == (
        StoreRefKind.ROTATION_STORE,
        "vault",
        "RotationStore/vault",
    )
    assert (resolved.store_namespace, resolved.namespace) == (NS, NS)
    assert isinstance(resolved.spec, RotationStoreSpec)
    assert resolved.address == VAULT_ADDRESS
    assert resolved.location() == {
        "kind": "vault",
        "store": "RotationStore/vault",
        "address": VAULT_ADDRESS,
        "mount": "secret",
        "path": "shop/orders-db",
    }


@pytest.mark.parametrize(
    ("prefix", "path", "full"),
    [
        ("{namespace}/", "orders-db", "shop/orders-db"),
        ("teams/{namespace}/apps/", "a/b", "teams/shop/apps/a/b"),
        ("kv-{namespace}/", "x", "kv-shop/x"),
        ("", "orders-db", "orders-db"),
        ("fixed/", "orders-db", "fixed/orders-db"),
        ("fixed/{namespace}-", "db", "fixed/shop-db"),
    ],
)
def test_the_prefix_is_applied_with_the_namespace(prefix: str, path: str, full: str) -> None:
    assert resolve(NS, policy(path), vault_store(prefix), {}).path == full


def test_an_aws_store_location_names_region_secret_id_and_endpoint() -> None:
    resolved = resolve(NS, policy(name="aws"), aws_store(), {})
    assert resolved.kind is StoreKind.AWS_SECRETS_MANAGER
    assert resolved.address == "aws:eu-west-1:http://127.0.0.1:5000"
    assert resolved.location() == {
        "kind": "aws",
        "store": "RotationStore/aws",
        "region": "eu-west-1",
        "secretId": "shop/orders-db",
        "endpointUrl": "http://127.0.0.1:5000",
    }
    without = resolve(NS, policy(name="aws"), aws_store(endpoint=None), {})
    assert "endpointUrl" not in without.location()
    assert without.address == "aws:eu-west-1:"


def test_store_paths_are_the_rest_paths_of_both_kinds() -> None:
    assert store_path(StoreRefKind.ROTATION_STORE, NS, "vault") == (
        "/apis/rotator.dev/v1alpha1/namespaces/shop/rotationstores/vault"
    )
    assert store_path(StoreRefKind.CLUSTER_ROTATION_STORE, NS, "shared") == (
        "/apis/rotator.dev/v1alpha1/clusterrotationstores/shared"
    )


# --------------------------------------------------------------------------------- not found


def test_a_missing_namespaced_store_is_not_found_in_the_namespace() -> None:
    error = refused(reasons.STORE_NOT_FOUND, "not found", resolve, NS, policy(), None, {})
    assert str(error) == "spec.storeRef: RotationStore vault not found in namespace shop"


def test_a_missing_cluster_store_is_not_found() -> None:
    error = refused(reasons.STORE_NOT_FOUND, "not found", resolve, NS, cluster_policy(), None, {})
    assert str(error) == "spec.storeRef: ClusterRotationStore shared not found"


def test_an_invalid_store_is_refused_naming_the_store_and_its_field() -> None:
    bad = vault_store()
    bad["spec"]["vault"]["address"] = "vault:8200"
    error = refused(reasons.STORE_INVALID, "is invalid", resolve, NS, policy(), bad, {})
    assert "spec.storeRef: RotationStore vault is invalid" in str(error)
    assert "spec.vault.address" in str(error)
    refused(reasons.STORE_INVALID, "is invalid", resolve, NS, policy(), {"spec": None}, {})


def test_a_cluster_store_is_read_with_the_cluster_store_rules() -> None:
    """The same object is judged by the kind the policy names: a namespaced-looking spec without
    namespaces is no valid cluster store (so it allows no one)."""
    error = refused(reasons.STORE_INVALID, "is invalid", resolve, NS, cluster_policy(), vault_store(), {})
    assert "spec.namespaces" in str(error)


# -------------------------------------------------------------------- cluster store: allowed


def test_a_cluster_store_allows_listed_names() -> None:
    store = cluster_store(names=["shop", "billing"])
    resolved = resolve(NS, cluster_policy(), store, {})
    assert isinstance(resolved.spec, ClusterRotationStoreSpec)
    assert resolved.path == "teams/shop/orders-db"
    assert resolved.store_namespace is None
    assert resolved.ref == "ClusterRotationStore/shared"
    assert resolve("billing", cluster_policy(), store, {}).path == "teams/billing/orders-db"


def test_a_cluster_store_refuses_a_namespace_it_does_not_list() -> None:
    error = refused(
        reasons.STORE_NOT_ALLOWED,
        "does not allow",
        resolve,
        "evil",
        cluster_policy(),
        cluster_store(names=["shop"]),
        TENANT,
    )
    assert str(error) == "spec.storeRef: ClusterRotationStore shared does not allow namespace evil"


def test_a_cluster_store_allows_by_selector() -> None:
    store = cluster_store(selector={"matchLabels": TENANT})
    assert (
        resolve("team-a", cluster_policy(), store, TENANT | {"other": "x"}).path == "teams/team-a/orders-db"
    )
    for labels in ({}, {"rotator.dev/tenant": "false"}, {"tenant": "true"}):
        refused(
            reasons.STORE_NOT_ALLOWED, "does not allow", resolve, "team-a", cluster_policy(), store, labels
        )


def test_a_selector_must_match_every_label() -> None:
    store = cluster_store(selector={"matchLabels": {"team": "a", "tier": "prod"}})
    assert resolve("x", cluster_policy(), store, {"team": "a", "tier": "prod"})
    refused(reasons.STORE_NOT_ALLOWED, "does not allow", resolve, "x", cluster_policy(), store, {"team": "a"})


def test_names_or_selector_either_allows() -> None:
    store = cluster_store(names=["shop"], selector={"matchLabels": TENANT})
    assert resolve(NS, cluster_policy(), store, {})
    assert resolve("team-b", cluster_policy(), store, TENANT)
    refused(reasons.STORE_NOT_ALLOWED, "does not allow", resolve, "team-b", cluster_policy(), store, {})


@pytest.mark.parametrize(
    "namespaces", [{}, {"names": []}, {"selector": {}}, {"selector": {"matchLabels": {}}}]
)
def test_an_empty_allow_list_or_selector_allows_no_one(namespaces: Obj) -> None:
    """Unlike a Kubernetes label selector, an empty one here matches nothing: a store shared with
    "everyone" must say so with a label the admin puts on namespaces."""
    store = cluster_store()
    store["spec"]["namespaces"] = namespaces
    refused(reasons.STORE_NOT_ALLOWED, "does not allow", resolve, NS, cluster_policy(), store, TENANT)


def test_a_namespaced_store_is_only_read_from_the_policy_namespace() -> None:
    """There is no namespace in storeRef: the REST path is always the policy's own namespace."""
    assert "/namespaces/evil/" in store_path(StoreRefKind.ROTATION_STORE, "evil", "vault")


# ---------------------------------------------------------------------- paths stay confined


@pytest.mark.parametrize(
    "path",
    ["../billing/orders-db", "..", "a/../../billing/x", "./x", "a/./b", "a//b", "a/", "/a"],
)
@pytest.mark.parametrize("prefix", ["{namespace}/", "teams/{namespace}/", ""])
def test_a_path_leaving_the_prefix_is_refused_naming_spec_path(prefix: str, path: str) -> None:
    """Whatever the models admit (the CRD refuses these), resolve() refuses the full path: a
    ``..`` segment would let "shop" reach "billing" once the HTTP client normalises it."""
    spec = policy().model_copy(update={"path": path})  # no validation: resolve's own defence
    error = refused(reasons.INVALID_SPEC, "spec.path", resolve, NS, spec, vault_store(prefix), {})
    assert str(error).startswith("spec.path: ")


def test_a_cluster_prefix_that_could_leave_the_namespace_is_refused_as_invalid() -> None:
    for prefix in ("{namespace}/../", "shared/", "teams/{namespace}", ""):
        refused(reasons.STORE_INVALID, "is invalid", resolve, NS, cluster_policy(), cluster_store(prefix), {})


def test_two_namespaces_on_one_cluster_store_never_share_a_path() -> None:
    store = cluster_store(names=["shop", "shopping"])
    a = resolve("shop", cluster_policy("pingx"), store, {}).path
    b = resolve("shopping", cluster_policy("x"), store, {}).path
    assert (a, b) == ("teams/shop/pingx", "teams/shopping/x")


# ------------------------------------------------------------------------ address allowlist


def test_the_address_allowlist() -> None:
    assert resolve(NS, policy(), vault_store(), {}, allowed_addresses=()).address == VAULT_ADDRESS
    assert resolve(NS, policy(), vault_store(), {}, allowed_addresses={VAULT_ADDRESS, "http://x"})
    error = refused(
        reasons.STORE_NOT_ALLOWED,
        "allowed-store-address",
        resolve,
        NS,
        policy(),
        vault_store(),
        {},
        allowed_addresses=["http://vault.other:8200"],
    )
    assert f"address {VAULT_ADDRESS} is not in" in str(error)
    # Exact match only: a trailing slash or another scheme is another address.
    for near in (VAULT_ADDRESS + "/", VAULT_ADDRESS.replace("http", "https")):
        refused(reasons.STORE_NOT_ALLOWED, "allowed", resolve, NS, policy(), vault_store(), {}, [near])


def test_the_allowlist_applies_to_aws_region_and_endpoint() -> None:
    allowed = ["aws:eu-west-1:"]
    assert resolve(NS, policy(name="aws"), aws_store(endpoint=None), {}, allowed)
    refused(reasons.STORE_NOT_ALLOWED, "allowed", resolve, NS, policy(name="aws"), aws_store(), {}, allowed)


def test_the_allowlist_is_checked_after_the_namespace_is_allowed() -> None:
    """A namespace a cluster store does not allow learns nothing about the store's address."""
    error = refused(
        reasons.STORE_NOT_ALLOWED,
        "does not allow",
        resolve,
        "evil",
        cluster_policy(),
        cluster_store(),
        {},
        ["http://elsewhere"],
    )
    assert VAULT_ADDRESS not in str(error)


# ------------------------------------------------------------------- credential namespaces


def test_a_namespaced_store_reads_credentials_only_from_its_own_namespace() -> None:
    resolved = resolve(NS, policy(), vault_store(), {})
    field = "vault.auth.tokenSecretRef"
    assert resolved.credential_namespace(None, field) == NS
    assert resolved.credential_namespace(NS, field) == NS
    error = refused(
        reasons.STORE_INVALID,
        "only from its own namespace",
        resolved.credential_namespace,
        "kube-system",
        field,
    )
    assert "'shop'" in str(error)
    assert "'kube-system'" in str(error)
    assert "spec.vault.auth.tokenSecretRef.namespace" in str(error), "names the field"


def test_a_cluster_store_must_name_its_credential_namespace() -> None:
    resolved = resolve(NS, cluster_policy(), cluster_store(), {})
    field = "awsSecretsManager.auth.accessKeySecretRef"
    assert resolved.credential_namespace("rotator", field) == "rotator"
    assert resolved.credential_namespace(NS, field) == NS
    error = refused(
        reasons.STORE_INVALID, "must name the namespace", resolved.credential_namespace, None, field
    )
    assert f"spec.{field}.namespace" in str(error), "names the field"


# ----------------------------------------------------------------------------------- pinning


def _started(store: Obj | None = None, spec: RotationPolicySpec | None = None) -> ResolvedStore:
    return resolve(NS, spec or policy(), store or vault_store(), {})


def test_nothing_pinned_is_the_resolved_store() -> None:
    resolved = _started()
    assert pin(resolved, None, "r1") is resolved
    assert pin(resolved, {}, "r1") is resolved


def test_a_path_edit_applies_to_the_next_rotation() -> None:
    pinned = _started().location()
    moved = _started(spec=policy("moved"))
    kept = pin(moved, pinned, "r1")
    assert kept.path == "shop/orders-db"
    assert kept.location() == pinned
    assert (kept.spec, kept.ref, kept.namespace) == (moved.spec, moved.ref, moved.namespace)


def test_an_aws_secret_id_is_pinned() -> None:
    pinned = resolve(NS, policy(name="aws"), aws_store(), {}).location()
    moved = resolve(NS, policy("moved", name="aws"), aws_store(), {})
    assert pin(moved, pinned, "r1").path == "shop/orders-db"


@pytest.mark.parametrize(
    ("key", "now"),
    [
        ("address", vault_store(address="http://vault-2.vault:8200")),
        ("mount", vault_store(kvMount="kv")),
    ],
)
def test_a_changed_connection_mid_rotation_is_refused_naming_what_changed(key: str, now: Obj) -> None:
    pinned = _started().location()
    error = refused(
        reasons.STORE_KIND_CHANGED, f"spec.storeRef: {key} changed", pin, _started(now), pinned, "r1"
    )
    assert "during rotation r1" in str(error)
    assert "revert it" in str(error)


def test_another_store_mid_rotation_is_refused() -> None:
    pinned = _started().location()
    other = vault_store()
    other["metadata"]["name"] = "vault-2"
    now = resolve(NS, policy(name="vault-2"), other, {})
    error = refused(reasons.STORE_KIND_CHANGED, "spec.storeRef: store changed", pin, now, pinned, "r1")
    assert "'RotationStore/vault'" in str(error)
    assert "'RotationStore/vault-2'" in str(error)


def test_another_store_kind_mid_rotation_is_refused() -> None:
    pinned = _started().location()
    now = resolve(NS, policy(name="aws"), aws_store(), {})
    refused(reasons.STORE_KIND_CHANGED, "spec.storeRef: kind changed", pin, now, pinned, "r1")


def test_a_changed_aws_endpoint_mid_rotation_is_refused() -> None:
    pinned = resolve(NS, policy(name="aws"), aws_store(), {}).location()
    now = resolve(NS, policy(name="aws"), aws_store(endpoint="http://elsewhere:5000"), {})
    refused(reasons.STORE_KIND_CHANGED, "endpointUrl changed", pin, now, pinned, "r1")


@pytest.mark.parametrize("path", ["billing/orders-db", "shopping/x", "orders-db", ""])
def test_a_pinned_path_outside_the_prefix_is_refused(path: str) -> None:
    """A hand-edited status.rotation.storeLocation is not a way around the tenancy rules."""
    resolved = _started()
    pinned = resolved.location() | {"path": path}
    if not path:  # an empty pinned path falls back to the resolved one
        assert pin(resolved, pinned, "r1").path == "shop/orders-db"
        return
    error = refused(reasons.INVALID_STATUS, "outside this namespace's prefix", pin, resolved, pinned, "r1")
    assert str(error).startswith("status.rotation.storeLocation: ")


def test_a_pinned_aws_secret_id_outside_the_prefix_is_refused() -> None:
    resolved = resolve(NS, policy(name="aws"), aws_store(), {})
    pinned = resolved.location() | {"secretId": "billing/orders-db"}
    refused(reasons.INVALID_STATUS, "outside", pin, resolved, pinned, "r1")


def test_a_pinned_path_that_climbs_out_of_the_prefix_is_refused() -> None:
    resolved = _started()
    pinned = resolved.location() | {"path": "shop/../billing/orders-db"}
    with pytest.raises(PermanentError) as caught:
        pin(resolved, pinned, "r1")
    assert caught.value.reason == reasons.INVALID_STATUS

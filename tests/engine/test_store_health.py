"""A store's Ready condition: spec valid, address allowed, server reachable, credential accepted."""

from __future__ import annotations

from typing import Any

from rotator.engine.store_health import check_store
from rotator.kube import WatchCache, watched_object
from rotator.models import PermanentError, PolicyRef, RotationPolicyStatus, reasons
from rotator.models.store import StoreRefKind
from rotator.policy.backoff import retry_delay
from rotator.sandbox import demo
from rotator.stores.base import Store
from rotator.stores.health import Health
from rotator.stores.opener import StoreOpener
from rotator.stores.vault.auth import token_from_secret
from rotator.tenancy.resolve import ResolvedStore
from tests.engine.harness import NS, T0, CountingKube, EngineBench

STORE = f"/apis/rotator.dev/v1alpha1/namespaces/{NS}/rotationstores/vault"


def stored(bench: EngineBench) -> dict[str, Any]:
    obj = bench.kube.get(STORE)
    assert obj is not None
    return obj


def ready(bench: EngineBench) -> tuple[str, str, str]:
    status = RotationPolicyStatus.from_raw({"conditions": stored(bench)["status"]["conditions"]})
    condition = status.conditions[0]
    return str(condition.status), condition.reason, condition.message


def healthy(resolved: ResolvedStore) -> Health:
    return Health(True, reasons.STORE_READY, f"{resolved.address} reachable")


def test_a_healthy_store_is_ready_and_reported_once(bench: EngineBench) -> None:
    bench.seed()
    seen: list[ResolvedStore] = []

    def check(resolved: ResolvedStore) -> Health:
        seen.append(resolved)
        return healthy(resolved)

    first = check_store(stored(bench), StoreRefKind.ROTATION_STORE, bench.kube, check, T0)
    assert first.health.ready
    assert [(e.reason, e.warning) for e in first.events] == [(reasons.STORE_READY, False)]
    assert ready(bench) == ("True", reasons.STORE_READY, "http://vault.invalid:8200 reachable")
    assert seen[0].store_namespace == NS
    assert stored(bench)["status"]["observedGeneration"] == 1
    version = stored(bench)["metadata"]["resourceVersion"]
    again = check_store(stored(bench), StoreRefKind.ROTATION_STORE, bench.kube, check, T0)
    assert again.events == []
    assert stored(bench)["metadata"]["resourceVersion"] == version, "nothing changed, nothing written"


def test_an_invalid_store_names_the_field(bench: EngineBench) -> None:
    bench.seed()
    obj = stored(bench)
    obj["spec"] = {"pathPrefix": "x/"}  # neither vault nor awsSecretsManager (an older CRD let it in)
    checked = check_store(obj, StoreRefKind.ROTATION_STORE, bench.kube, healthy, T0)
    assert not checked.health.ready
    assert ready(bench)[:2] == ("False", reasons.STORE_INVALID)
    assert "exactly one of vault or awsSecretsManager" in ready(bench)[2]
    assert [(e.reason, e.warning) for e in checked.events] == [(reasons.STORE_INVALID, True)]


def test_an_address_outside_the_allowlist_is_refused_before_any_check(bench: EngineBench) -> None:
    bench.seed()
    called: list[object] = []
    checked = check_store(
        stored(bench),
        StoreRefKind.ROTATION_STORE,
        bench.kube,
        lambda resolved: called.append(resolved) or healthy(resolved),  # type: ignore[func-returns-value]
        T0,
        allowed_addresses=frozenset({"https://vault.vault:8200"}),
    )
    assert called == []
    assert (checked.health.ready, checked.health.reason) == (False, reasons.STORE_NOT_ALLOWED)


def test_a_refused_credential_and_a_broken_status_are_reported(bench: EngineBench) -> None:
    bench.seed()

    def refuse(resolved: ResolvedStore) -> Health:
        raise PermanentError(reasons.STORE_AUTH_MISSING, "Secret shop/vault-token is not labelled")

    obj = stored(bench)
    obj["status"] = {"conditions": [{"type": "Ready", "status": "maybe"}]}  # hand-edited
    checked = check_store(obj, StoreRefKind.ROTATION_STORE, bench.kube, refuse, T0)
    assert (checked.health.ready, checked.health.reason) == (False, reasons.STORE_AUTH_MISSING)
    assert ready(bench)[:2] == ("False", reasons.STORE_AUTH_MISSING)


def test_a_cluster_store_is_checked_without_a_namespace(bench: EngineBench) -> None:
    bench.seed()
    cluster = demo.vault_store(NS, "http://vault.invalid:8200", name="shared")
    cluster["kind"] = "ClusterRotationStore"
    del cluster["metadata"]["namespace"]
    cluster["spec"]["namespaces"] = {"names": [NS]}
    bench.kube.create("/apis/rotator.dev/v1alpha1/clusterrotationstores", cluster)
    obj = bench.kube.get("/apis/rotator.dev/v1alpha1/clusterrotationstores/shared")
    assert obj is not None
    seen: list[ResolvedStore] = []
    check_store(
        obj, StoreRefKind.CLUSTER_ROTATION_STORE, bench.kube, lambda r: seen.append(r) or healthy(r), T0
    )  # type: ignore[func-returns-value]
    assert seen[0].store_namespace is None
    after = bench.kube.get("/apis/rotator.dev/v1alpha1/clusterrotationstores/shared") or {}
    assert after["status"]["conditions"][0]["reason"] == reasons.STORE_READY


def test_a_missing_token_secret_is_not_found_and_looked_at_again_soon(bench: EngineBench) -> None:
    """The store applied before its token Secret: Ready=False "not found", re-checked within
    seconds (not the minute of other refusals), Ready as soon as the Secret exists."""
    bench.seed()
    opener = StoreOpener(bench.kube, bench.metrics)

    def credential_then_reachable(resolved: ResolvedStore) -> Health:
        """``opener.health`` short of asking Vault (none runs here): the Secret read and parsed."""
        ref = resolved.spec.vault.auth.token_secret_ref if resolved.spec.vault else None
        assert ref is not None
        where, secret = opener._static_secret(resolved, ref.name, ref.namespace, "vault.auth.tokenSecretRef")
        token_from_secret(where, secret, ref.key)
        return healthy(resolved)

    missing = check_store(stored(bench), StoreRefKind.ROTATION_STORE, bench.kube, opener.health, T0)
    assert (missing.health.ready, missing.health.reason) == (False, reasons.STORE_AUTH_MISSING)
    assert missing.health.message.endswith(f"Secret {NS}/{demo.TOKEN_SECRET} not found")
    assert missing.awaiting_secret
    bench.kube.create_secret(NS, demo.token_secret(NS, "root"))
    found = check_store(stored(bench), StoreRefKind.ROTATION_STORE, bench.kube, credential_then_reachable, T0)
    assert (found.health.ready, found.awaiting_secret) == (True, False)


def test_a_policy_waiting_for_its_token_secret_recovers_at_the_short_recheck(bench: EngineBench) -> None:
    bench.seed()
    opener = StoreOpener(bench.kube, bench.metrics)

    def open_store(ref: PolicyRef, resolved: ResolvedStore) -> Store:
        opener(ref, resolved)  # reads the token Secret as the operator does (no request to Vault)
        return bench.store

    waiting = bench.reconcile(open_store=open_store)
    ready_status, reason, message = waiting.condition("Ready")
    assert (ready_status, reason) == ("False", reasons.STORE_AUTH_MISSING)
    assert message.endswith("not found")
    assert waiting.requeue == bench.settings.credential_secret_recheck
    assert waiting.requeue < bench.settings.permanent_error_recheck
    bench.kube.create_secret(NS, demo.token_secret(NS, "root"))
    started = bench.reconcile(open_store=open_store)
    assert started.status.rotation is not None, "the next look, seconds later, goes on"


def test_a_store_changed_between_read_and_write_is_checked_again_from_the_new_object(
    bench: EngineBench,
) -> None:
    """Optimistic status for stores as for policies (issue 9, item 2): the write carries the
    resourceVersion read, so an edit made while the check ran gets it refused (409); that
    decision is dropped whole, status and Events; the re-check, at once, reads the store anew
    (the watch cache forgot the stale copy) and its write lands, computed from the new spec."""
    bench.seed()
    kube = bench.kube
    assert isinstance(kube, CountingKube)
    kube.cache = WatchCache(watched_object)  # as the operator reads stores: from its watch
    read = stored(bench)
    kube.cache.put(read)
    moved = "http://vault-2.invalid:8200"

    def check_while_an_admin_edits(resolved: ResolvedStore) -> Health:
        kube.merge_patch(STORE, {"spec": {"vault": {"address": moved}}})
        return healthy(resolved)

    first = check_store(read, StoreRefKind.ROTATION_STORE, kube, check_while_an_admin_edits, T0)
    assert (first.stale, first.events, first.retry_after) == (True, [], 0.0)
    assert kube.status_answers == [(STORE, read["metadata"]["resourceVersion"], 409)]
    fresh = stored(bench)  # through the cache, as the loop reads it
    assert fresh["metadata"]["generation"] == 2, "the refused write dropped the stale cached copy"
    assert not (fresh.get("status") or {}).get("conditions"), "nothing of the stale decision stored"

    second = check_store(fresh, StoreRefKind.ROTATION_STORE, kube, healthy, T0, conflicts=1)
    assert not second.stale
    assert kube.status_answers[-1] == (STORE, fresh["metadata"]["resourceVersion"], 200)
    assert [(e.reason, e.message) for e in second.events] == [(reasons.STORE_READY, f"{moved} reachable")]
    assert ready(bench) == ("True", reasons.STORE_READY, f"{moved} reachable")
    assert stored(bench)["status"]["observedGeneration"] == 2
    assert kube.cache.lookup(STORE)[1] == kube.get(STORE), "the cache holds the write's answer"


def test_conflicts_in_a_row_on_a_store_back_off(bench: EngineBench) -> None:
    bench.seed()
    read = stored(bench)
    bench.kube.merge_patch(STORE, {"metadata": {"annotations": {"example.com/touched": "1"}}})
    checked = check_store(
        read, StoreRefKind.ROTATION_STORE, bench.kube, healthy, T0, conflicts=3, settings=bench.settings
    )
    seed = f"{StoreRefKind.ROTATION_STORE}/{NS}/vault"
    expected = retry_delay(2, base=bench.settings.backoff_base, cap=bench.settings.backoff_cap, seed=seed)
    assert checked.stale
    assert checked.retry_after == expected > 0
    assert not (stored(bench).get("status") or {}).get("conditions")

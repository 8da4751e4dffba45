"""Deleting is safe (issue 7, item 5) and a path has exactly one owner even when policies race
for it (item 3), through the operator on the real local stack.

The deletion tests run on both Kubernetes backends: on the real control plane the policy goes
without a finalizer by kube-apiserver's own rules, and the Secret of ``deletionPolicy: Delete``
is removed by controller-manager's garbage collector following the ownerReference rotator set
(the emulator imitates both). The race is for the store path, decided at OpenBao by
check-and-set, whatever serves Kubernetes: it stays on the emulator (forty policies in one
namespace would cost the single real worker a minute for nothing the real server could show)."""

from __future__ import annotations

import base64

import pytest

from rotator.kube import policy_path
from rotator.sandbox import demo
from tests.fixtures.kube_backends import BACKENDS
from tests.fixtures.rotation import Bench

both_backends = pytest.mark.parametrize("kube_backend", BACKENDS, indirect=True)


@both_backends
def test_policies_carry_no_finalizer_and_can_be_deleted_while_the_operator_is_down(bench: Bench) -> None:
    bench.seed()
    bench.operator.start()
    bench.wait_rotations(1)
    assert not (bench.policy().get("metadata") or {}).get("finalizers"), (
        "no finalizer only rotator can remove"
    )
    store = bench.kube.get(f"{demo.store_collection(bench.namespace)}/{demo.STORE}") or {}
    assert not store["metadata"].get("finalizers")
    value = bench.secret_value()
    bench.operator.stop()
    bench.kube.request("DELETE", policy_path(bench.namespace, demo.POLICY))
    assert bench.kube.get_policy(bench.namespace, demo.POLICY) is None, "gone at once, operator or not"
    # deletionPolicy Retain (the default): consumers keep their credential.
    assert bench.secret_value() == value
    assert bench.kv_value(1) == value, "the store keeps the credential: nothing is lost"


@both_backends
def test_deletion_policy_delete_hands_the_secret_to_the_garbage_collector(bench: Bench) -> None:
    bench.seed(extra_spec={"secret": {"name": demo.SECRET, "key": "password", "deletionPolicy": "Delete"}})
    bench.operator.start()
    bench.wait_rotations(1)
    owners = (bench.secret() or {})["metadata"]["ownerReferences"]
    assert [(o["kind"], o["name"]) for o in owners] == [("RotationPolicy", demo.POLICY)]
    bench.kube.request("DELETE", policy_path(bench.namespace, demo.POLICY))
    bench.wait(lambda o: bench.secret() is None, 30, "the Secret garbage-collected")


def test_twenty_pairs_of_policies_racing_for_one_new_path_get_one_owner_each(bench: Bench) -> None:
    bench.seed(create_policy=False, deployment=False)
    pairs = [(f"a{i:02d}", f"b{i:02d}") for i in range(20)]
    for index, pair in enumerate(pairs):
        for name in pair:
            body = demo.rotation_policy(
                bench.namespace,
                name=name,
                secret=f"{name}-secret",
                deployment=None,
                path=f"{bench.policy_path}/{index:02d}",
            )
            bench.kube.create(policy_path(bench.namespace), body)
    bench.operator.start()

    def ready(name: str) -> dict[str, str]:
        status = (bench.kube.get_policy(bench.namespace, name) or {}).get("status") or {}
        return next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})

    def settled(name: str) -> bool:
        status = (bench.kube.get_policy(bench.namespace, name) or {}).get("status") or {}
        rotated = bool(status.get("history")) and not status.get("rotation")
        return rotated or ready(name).get("reason") == "StoreNotOwned"

    bench.wait(lambda o: all(settled(n) for pair in pairs for n in pair), 90, "every policy settled")
    for pair in pairs:
        reasons = sorted(ready(name)["reason"] for name in pair)
        assert reasons == ["Ready", "StoreNotOwned"], (pair, reasons)
        values = []
        for name in pair:
            secret = bench.kube.get_secret(bench.namespace, f"{name}-secret")
            data = (secret or {}).get("data") or {}
            if "password" in data:
                values.append(base64.b64decode(data["password"]).decode())
        assert len(values) == 1, f"{pair}: the credential reached exactly one Secret"
        bench.seen_values.update(values)

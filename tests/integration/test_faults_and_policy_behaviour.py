"""Faults (a store outage mid-rotation) and the policy switches a platform engineer relies on:
invalid input, ownership refusals, adoption, dry run, suspend, drift repair.

The tests where the API server is the subject also run on the real control plane: input the
CRD's schema refuses (kube-apiserver's 422, not the emulator's imitation of it), input it
admits and rotator's models refuse, a foreign Secret of the same name (refused before any side
effect, with the real server's dry runs), and drift repair, found by the operator's watch on
the Secrets it wrote (label-selected, under the manifests' RBAC) as kube-apiserver serves that
watch. The others test the operator's reaction to the store or to its own switches, the same
whatever serves Kubernetes."""

from __future__ import annotations

import time

import hvac
import pytest

from rotator.kube import KubeError, policy_path
from rotator.sandbox import demo
from tests.fixtures.kube_backends import BACKENDS
from tests.fixtures.rotation import Bench

both_backends = pytest.mark.parametrize("kube_backend", BACKENDS, indirect=True)


def status_of(bench: Bench) -> dict:  # type: ignore[type-arg]
    return dict(bench.status())


def ready(status: dict) -> dict:  # type: ignore[type-arg]
    return next(c for c in status.get("conditions") or [] if c["type"] == "Ready")


@pytest.mark.long(seconds=53)
def test_vault_down_for_30s_mid_rotation_waits_with_backoff_then_completes(bench: Bench) -> None:
    bench.seed(extra_spec={"revoke": {"gracePeriod": "3s"}})
    bench.operator.start()
    bench.wait_rotations(1)
    bench.force()
    bench.wait(
        lambda o: ((o.get("status") or {}).get("rotation") or {}).get("step") == "revoke", 30, "revoke"
    )
    with bench.vault.paused():
        # While Vault does not answer, the rotation stays at its step and records the retries.
        during = bench.wait(
            lambda o: int(((o.get("status") or {}).get("rotation") or {}).get("attempt") or 0) >= 1,
            29,
            "a recorded retry",
        )
        rotation = during["status"]["rotation"]
        assert rotation["step"] == "revoke"
        assert "StoreUnavailable" in rotation["lastError"]
        # ... and its conditions say so: what is unreachable since when, which step retries.
        condition = ready(during["status"])
        assert (condition["status"], condition["reason"]) == ("False", "StoreUnavailable")
        assert f"since {during['status']['failingSince']}" in condition["message"]
        rotating = next(c for c in during["status"]["conditions"] if c["type"] == "Rotating")
        assert rotating["message"].startswith("revoke: retrying after")
        time.sleep(max(0.0, 30 - 1))
        assert bench.status()["rotation"]["step"] == "revoke"
    status = bench.wait_rotations(2, timeout=120).get("status") or {}
    assert ready(status)["status"] == "True"
    assert "failingSince" not in status
    assert status["history"][0]["result"] == "Succeeded"
    assert sorted(bench.kv_versions()) == [1, 2]
    assert bench.kv_value(1) is None
    assert bench.secret_value() == bench.kv_value(2)
    assert "StepRetrying" in bench.event_reasons()


@both_backends
def test_spec_the_models_reject_gets_invalid_spec_condition_and_event(bench: Bench) -> None:
    # Fits the CRD's cron pattern (so the API accepts it) but never matches a real date.
    bench.seed(extra_spec={"schedule": {"cron": "0 0 31 2 *"}})
    bench.operator.start()
    status = bench.wait(lambda o: bool((o.get("status") or {}).get("conditions")), 30, "conditions")["status"]
    condition = ready(status)
    assert condition["status"] == "False"
    assert condition["reason"] == "InvalidSpec"
    assert "spec.schedule.cron" in condition["message"]
    # Kopf posts Events asynchronously: wait for it rather than racing the poster.
    bench.wait(lambda o: "InvalidSpec" in bench.event_reasons(), 10, "the InvalidSpec Event")
    assert bench.secret() is None
    # Fixing the spec recovers without a restart: the operator never crashed on bad input.
    bench.patch_spec({"schedule": {"cron": "0 3 * * 0"}})
    bench.wait_rotations(1)
    assert bench.operator.alive()


def test_a_bad_policy_is_named_at_once_while_every_rotation_slot_is_taken(bench: Bench) -> None:
    """``--max-rotating 1`` and the one rotation stuck in verify: a new policy whose spec the
    models refuse gets its InvalidSpec condition without waiting for the slot (its reconcile
    can only name the field; ``rotator.engine.cannot_start_rotation``)."""
    bench.seed(extra_spec={"verify": {"timeout": "120s"}})
    bench.set_fail_readiness()
    bench.operator.extra_args = ("--max-rotating", "1")
    bench.operator.start()
    bench.wait(
        lambda o: ((o.get("status") or {}).get("rotation") or {}).get("step") == "verify", 30, "verify"
    )
    bad = demo.rotation_policy(
        bench.namespace,
        name="bad",
        secret="bad",
        deployment=None,
        path="bad",
        extra_spec={"schedule": {"cron": "0 0 31 2 *"}},
    )
    bench.kube.create(policy_path(bench.namespace), bad)
    deadline = time.monotonic() + 30
    while not (((bench.kube.get_policy(bench.namespace, "bad") or {}).get("status") or {}).get("conditions")):
        assert time.monotonic() < deadline, "the bad policy waited for the rotation slot"
        time.sleep(0.1)
    named = ready((bench.kube.get_policy(bench.namespace, "bad") or {})["status"])
    assert (named["reason"], named["message"].split(":")[0]) == ("InvalidSpec", "spec.schedule.cron")
    assert bench.status()["rotation"]["step"] == "verify", "the slot was still taken meanwhile"


@both_backends
def test_api_refuses_a_policy_the_crd_rejects_naming_the_field(bench: Bench) -> None:
    bench.seed(create_policy=False)
    body = bench.policy_body()
    body["spec"]["path"] = "../sys/policy/admin"
    with pytest.raises(KubeError) as refused:
        bench.kube.create(policy_path(bench.namespace), body)
    assert refused.value.status == 422
    assert "spec.path" in str(refused.value)


def test_unowned_vault_path_is_refused_until_adopted(bench: Bench) -> None:
    client = bench.vault_client()
    client.secrets.kv.v2.create_or_update_secret(
        path=bench.vault_path, secret={"value": "pre-existing-password-123"}, mount_point="secret"
    )
    bench.seen_values.add("pre-existing-password-123")
    bench.seed()
    bench.operator.start()
    status = bench.wait(lambda o: bool((o.get("status") or {}).get("conditions")), 30, "conditions")["status"]
    assert ready(status)["reason"] == "StoreNotOwned"
    assert bench.vault_path in ready(status)["message"]
    assert bench.kv_value(1) == "pre-existing-password-123"
    assert sorted(bench.kv_versions()) == [1]

    bench.patch_spec({"adopt": True})
    status = bench.wait(lambda o: (o.get("status") or {}).get("currentVersion") == "1", 30, "adoption")[
        "status"
    ]
    assert not status.get("history"), "an adopted value needs no initial rotation"
    bench.wait(lambda o: bench.secret_value() == "pre-existing-password-123", 30, "Secret synced")
    assert "StoreAdopted" in bench.event_reasons()


def test_dry_run_reports_what_it_would_do_and_touches_nothing(bench: Bench) -> None:
    bench.seed(extra_spec={"dryRun": True})
    bench.operator.start()
    status = bench.wait(lambda o: bool((o.get("status") or {}).get("lastDryRun")), 30, "dry run report")[
        "status"
    ]
    report = status["lastDryRun"]
    assert report["wouldRotate"] is True
    assert report["reason"] == "Initial"
    time.sleep(2)
    assert bench.secret() is None
    try:
        bench.kv_metadata()
    except hvac.exceptions.InvalidPath:
        pass
    else:
        raise AssertionError("dry run wrote to the store")
    assert "DryRun" in bench.event_reasons()
    assert not bench.status().get("history")


def test_suspend_stops_new_rotations_and_ignores_force(bench: Bench) -> None:
    bench.seed()
    bench.operator.start()
    bench.wait_rotations(1)
    bench.patch_spec({"suspend": True})
    bench.wait(lambda o: ready(o.get("status") or {})["reason"] == "Suspended", 30, "suspended")
    bench.force("while-suspended")
    bench.wait(
        lambda o: (o.get("status") or {}).get("lastHandledForceRotate") == "while-suspended", 30, "force"
    )
    time.sleep(2)
    assert len(bench.status()["history"]) == 1
    bench.patch_spec({"suspend": False})
    time.sleep(2)
    assert len(bench.status()["history"]) == 1, "a force recorded while suspended fired later"


@both_backends
def test_drift_in_the_secret_is_repaired_and_reported(bench: Bench) -> None:
    bench.seed()
    bench.operator.start()
    bench.wait_rotations(1)
    good = bench.secret_value()
    secret = dict(bench.secret() or {})
    secret["data"] = {"password": "dGFtcGVyZWQtdmFsdWU="}  # "tampered-value"
    bench.kube.replace_secret(bench.namespace, demo.SECRET, secret)
    bench.wait(lambda o: bench.secret_value() == good, 30, "drift repaired")
    bench.wait(lambda o: "SecretDriftRepaired" in bench.event_reasons(), 10, "the drift Event")


@both_backends
def test_foreign_secret_with_the_same_name_is_never_overwritten(bench: Bench) -> None:
    bench.seed(create_policy=False)
    foreign = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": demo.SECRET, "namespace": bench.namespace},
        "data": {"password": "Zm9yZWlnbi12YWx1ZQ=="},  # "foreign-value"
    }
    bench.kube.create_secret(bench.namespace, foreign)
    bench.create_policy()
    bench.operator.start()
    bench.wait_condition_reason("SecretNotOwned")
    assert bench.secret_value() == "foreign-value"
    assert not (bench.secret() or {})["metadata"].get("labels")
    # Refused before any side effect: no rotation started, nothing written to the store.
    assert not bench.status().get("rotation")
    try:
        bench.kv_metadata()
    except hvac.exceptions.InvalidPath:
        pass
    else:
        raise AssertionError("a rotation wrote to the store although its Secret is foreign")


def test_restart_target_that_does_not_consume_the_secret_is_reported(bench: Bench) -> None:
    bench.seed(consumer_secret="some-other-secret")
    bench.operator.start()
    bench.wait_rotations(1)
    warnings = [e for e in bench.events() if e.get("reason") == "RestartTargetNotConsumingSecret"]
    assert warnings
    assert warnings[0]["type"] == "Warning"
    assert "spec.restart.targets" in warnings[0]["message"]

"""What happens after things went wrong: no retry storm after a rollback, a destroyed current
credential, a mid-rotation dryRun, a malformed Vault token that must not leak, and spec edits
during a rotation that must not redirect it.

On the emulator only: each turns on the store or on the operator's own state, the same whatever
serves Kubernetes. The rollback test is backend-neutral (``bench.set_fail_readiness``) and passes
on the real control plane (33 s there, under load), but a rollback on controller-manager's
ProgressDeadlineExceeded already runs there in test_rotation.py and test_crash_recovery.py, and
the real tier's one worker has no time to spare for the same proof twice."""

from __future__ import annotations

import base64
import time

from rotator.kube import policy_path
from rotator.sandbox import demo
from tests.fixtures.rotation import Bench


def rotation_step(obj: dict) -> str | None:  # type: ignore[type-arg]
    return ((obj.get("status") or {}).get("rotation") or {}).get("step")


def test_rollback_pauses_automatic_retries_but_not_a_force(bench: Bench) -> None:
    bench.seed(progress_deadline=2)
    bench.operator.start()
    bench.wait_rotations(1)
    bench.set_fail_readiness()
    # maxAge of 2s: the credential is immediately too old, so the trigger keeps firing.
    bench.patch_spec({"schedule": {"interval": None, "maxAge": "2s"}})
    status = bench.wait_rotations(2).get("status") or {}
    assert status["history"][0]["result"] == "RolledBack"
    assert status["history"][0]["reason"] == "MaxAgeExceeded"
    assert status["retryNotBefore"]
    time.sleep(4)  # several idle ticks with the maxAge trigger still true
    assert len(bench.status()["history"]) == 2, "a rolled-back rotation was retried at once"
    # 2 was the rolled-back credential, 3 republishes the old value for readers of "latest":
    # one rollback, no retry (a retry would have written 4 and more).
    assert sorted(bench.kv_versions()) == [1, 2, 3]
    bench.set_fail_readiness(False)
    bench.force()
    status = bench.wait_rotations(3).get("status") or {}
    assert status["history"][0]["result"] == "Succeeded"
    assert status["history"][0]["reason"] == "Forced"
    assert not status.get("retryNotBefore")


def test_destroyed_current_credential_is_reported_and_a_rotation_recovers(bench: Bench) -> None:
    bench.seed()
    # A settled idle policy reads the store only at its safety resync (600 s by default).
    bench.operator.extra_args = ("--resync", "1")
    bench.operator.start()
    bench.wait_rotations(1)
    bench.vault_client().secrets.kv.v2.destroy_secret_versions(
        path=bench.vault_path, versions=[1], mount_point="secret"
    )
    bench.wait_condition_reason("CurrentCredentialUnreadable")
    bench.force()
    status = bench.wait_rotations(2).get("status") or {}
    assert status["history"][0]["result"] == "Succeeded"
    assert bench.secret_value() == bench.kv_value(2)
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "False"


def test_dry_run_set_mid_rotation_holds_before_revoking(bench: Bench) -> None:
    bench.seed(extra_spec={"revoke": {"gracePeriod": "2s"}})
    bench.operator.start()
    bench.wait_rotations(1)
    old = bench.kv_value(1)
    bench.force()
    bench.wait(lambda o: rotation_step(o) == "revoke", 30, "revoke step")
    bench.patch_spec({"dryRun": True})
    time.sleep(4)  # past the grace period
    assert rotation_step(bench.policy()) == "revoke"
    assert bench.kv_value(1) == old, "revoked although dryRun was set"
    bench.patch_spec({"dryRun": False})
    bench.wait_rotations(2)
    assert bench.kv_value(1) is None


def test_malformed_vault_token_is_refused_without_echoing_it(bench: Bench) -> None:
    bench.seed(create_policy=False)
    leaked = "s.tokenpartafterthebreak"
    bench.seen_values.add(leaked)
    secret = dict(bench.kube.get_secret(bench.namespace, demo.TOKEN_SECRET) or {})
    secret["data"] = {"token": base64.b64encode(f"root\n{leaked}".encode()).decode()}
    bench.kube.replace_secret(bench.namespace, demo.TOKEN_SECRET, secret)
    bench.create_policy()
    bench.operator.start()
    status = bench.wait_condition_reason("StoreAuthMissing")
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert "tokenSecretRef" in ready["message"]
    assert leaked not in repr(bench.events())


def test_store_path_edited_mid_rotation_does_not_redirect_it(bench: Bench) -> None:
    bench.seed(extra_spec={"revoke": {"gracePeriod": "3s"}})
    bench.operator.start()
    bench.wait_rotations(1)
    bench.force()
    bench.wait(lambda o: rotation_step(o) == "revoke", 30, "revoke step")
    bench.kube.merge_patch(
        policy_path(bench.namespace, demo.POLICY), {"spec": {"path": bench.policy_path + "-moved"}}
    )
    status = bench.wait_rotations(2).get("status") or {}
    assert status["history"][0]["result"] == "Succeeded"
    # The rotation finished where it started: version 1 revoked, version 2 current on the old path.
    assert bench.kv_value(1) is None
    old_path_current = bench.kv_value(2)
    assert old_path_current is not None
    # Then the move itself is a spec change: the new path gets its own first credential.
    status = bench.wait_rotations(3).get("status") or {}
    assert status["history"][0]["reason"] == "SpecChanged"
    assert status["history"][0]["result"] == "Succeeded"
    assert bench.kv_value(2) == old_path_current, "the old path's credential is kept, never lost"
    moved = bench.vault_client().secrets.kv.v2.read_secret_version(
        path=bench.vault_path + "-moved", mount_point="secret", raise_on_deleted_version=False
    )
    assert moved["data"]["data"]["value"] == bench.secret_value()

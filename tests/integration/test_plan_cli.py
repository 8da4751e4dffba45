"""`rotator plan` through the command line against the emulator stack: from the live cluster
(one policy, or all), from a file before it is applied (a credential change would rotate now; a
new policy's first rotation; offline), and never a write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from rotator.kube import policy_path
from rotator.models.keys import FORCE_ROTATE
from rotator.sandbox import demo
from tests.fixtures.rotation import NAMESPACE, Bench
from tests.integration.test_cli import rotator

WINDOW = {"days": ["Sat"], "start": "02:00", "end": "04:00", "timeZone": "Europe/Berlin"}


def plan(bench: Bench, *args: str) -> tuple[int, Any, str]:
    result = rotator("plan", "--kubeconfig", str(bench.operator.kubeconfig), *args, timeout=60)
    parsed = json.loads(result.stdout) if "-o" in args and result.stdout.startswith("[") else None
    return result.returncode, parsed, result.stdout + result.stderr


def versions(bench: Bench) -> dict[str, str]:
    policy = bench.kube.get_policy(NAMESPACE, demo.POLICY) or {}
    secret = bench.kube.get_secret(NAMESPACE, demo.SECRET) or {}
    return {"policy": policy["metadata"]["resourceVersion"], "secret": secret["metadata"]["resourceVersion"]}


def test_plan_live_policy_now_next_steps_and_restarts(bench: Bench) -> None:
    bench.seed(extra_spec={"schedule": {"interval": "720h", "maxAge": "2160h", "window": WINDOW}})
    bench.operator.start()
    status = bench.wait_rotations(1)["status"]
    bench.wait(lambda obj: bool((obj.get("status") or {}).get("nextRotationTime")), what="next time")
    status = bench.status()
    bench.operator.stop()  # nothing acts on the force below but the plan's own reading
    bench.force("on-call-1")
    before = versions(bench)

    code, plans, out = plan(bench, "-n", NAMESPACE, demo.POLICY, "-o", "json")
    assert code == 0, out
    [one] = plans
    assert one["now"] == {
        "rotate": True,
        "reason": "Forced",
        "message": "rotation forced by annotation (force-rotate='on-call-1')",
        "blockedBy": None,
    }
    # After the forced rotation the interval counts from now, moved into the Saturday window.
    assert one["next"]["reason"] == "Due"
    assert one["window"] == {
        "description": "Sat 02:00-04:00 Europe/Berlin",
        "openNow": one["window"]["openNow"],
    }
    assert [s["step"] for s in one["steps"]] == ["generate", "dual", "sync", "restart", "verify", "revoke"]
    assert f"Vault KV secret/{bench.vault_path}" in one["steps"][0]["does"]
    assert one["restarts"] == [{"kind": "Deployment", "name": demo.DEPLOYMENT, "exists": True}]
    assert versions(bench) == before, "plan wrote something"

    bench.force(status.get("lastHandledForceRotate") or "")  # blank: no request pending
    bench.kube.merge_patch(
        policy_path(NAMESPACE, demo.POLICY), {"metadata": {"annotations": {FORCE_ROTATE: None}}}
    )
    code, plans, out = plan(bench, "-o", "json")  # every namespace
    assert code == 0, out
    [idle] = plans
    assert idle["now"]["rotate"] is False
    assert idle["next"]["at"] == status["nextRotationTime"]  # what the operator published

    code, _, text = plan(bench, "-n", NAMESPACE)
    assert code == 0
    assert (
        f"{NAMESPACE}/{demo.POLICY}: no rotation now: next rotation at {status['nextRotationTime']}" in text
    )
    assert "window:   Sat 02:00-04:00 Europe/Berlin" in text
    assert f"4 restart   Deployment/{demo.DEPLOYMENT}" in text


def test_plan_a_file_before_merging(bench: Bench, tmp_path: Path) -> None:
    bench.seed()
    bench.operator.start()
    bench.wait_rotations(1)
    bench.operator.stop()
    before = versions(bench)

    changed = bench.policy_body()
    changed["spec"]["credential"] = {"password": {"length": 48}}
    changed["spec"]["restart"] = {
        "targets": [{"kind": "Deployment", "name": demo.DEPLOYMENT}, {"kind": "StatefulSet", "name": "ghost"}]
    }
    new = bench.policy_body(deployment=False)
    new["metadata"] = {"name": "brand-new", "namespace": NAMESPACE}
    new["spec"]["secret"]["name"] = "brand-new-credentials"
    new["spec"]["path"] = bench.policy_path + "-new"
    invalid = bench.policy_body()
    invalid["metadata"] = {"name": "broken"}
    invalid["spec"]["schedule"] = {"cron": "0 3 * * *", "timeZone": "Mars/Olympus_Mons"}
    manifest = tmp_path / "policies.yaml"
    manifest.write_text(yaml.safe_dump_all([changed, new, invalid]))

    code, plans, out = plan(bench, "-n", NAMESPACE, "-f", str(manifest), "-o", "json")
    assert code == 1, out  # one of them is invalid
    spec_change, initial, broken = plans
    assert (spec_change["now"]["rotate"], spec_change["now"]["reason"]) == (True, "SpecChanged")
    assert {"kind": "StatefulSet", "name": "ghost", "exists": False} in spec_change["restarts"]
    assert "restart target StatefulSet/ghost does not exist" in spec_change["notes"]
    assert (initial["now"]["rotate"], initial["now"]["reason"]) == (True, "Initial")
    assert initial["next"]["reason"] == "Due"  # the demo's interval, counted from the first rotation
    assert broken["error"].startswith(
        "invalid: spec.schedule.timeZone: unknown time zone 'Mars/Olympus_Mons'"
    )

    code, plans, out = plan(bench, "-f", str(manifest), "--offline", "-o", "json")
    offline = plans[0]
    assert (offline["now"]["rotate"], offline["now"]["reason"]) == (True, "Initial")  # no live status
    assert any("store not resolved (offline)" in note for note in offline["notes"])
    assert offline["restarts"][0]["exists"] is None
    assert versions(bench) == before, "plan wrote something"
    assert bench.kube.get_policy(NAMESPACE, "brand-new") is None

    code, _, out = plan(bench, "-n", NAMESPACE, "nope")
    assert code == 1
    assert f"RotationPolicy {NAMESPACE}/nope not found" in out

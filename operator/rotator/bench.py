"""`make bench`: figures for speed and memory, printed, never asserted.

What it measures, on the embedded local stack:
- startup of the whole stack (emulator, OpenBao, moto, PostgreSQL);
- one forced rotation end to end (force annotation to history entry), median of several;
- N policies rotated at once: wall time until all are done;
- the operator's resident memory idle with N policies, and the emulator's request rate.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from rotator.kube import Kube, policy_path
from rotator.models.keys import FORCE_ROTATE
from rotator.sandbox import demo
from rotator.sandbox.operator_process import OperatorProcess
from rotator.sandbox.stack import Stack

BENCH_NAMESPACE = "bench"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def histories(kube: Kube, names: list[str]) -> dict[str, int]:
    counts = {}
    for name in names:
        status = (kube.get_policy(BENCH_NAMESPACE, name) or {}).get("status") or {}
        counts[name] = len(status.get("history") or []) if not status.get("rotation") else -1
    return counts


def wait_all(kube: Kube, names: list[str], count: int, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if all(n >= count for n in histories(kube, names).values()):
            return time.monotonic() - started
        time.sleep(0.05)
    raise TimeoutError(f"not all {len(names)} policies reached {count} rotations in {timeout}s")


def force(kube: Kube, name: str, value: str) -> None:
    kube.merge_patch(policy_path(BENCH_NAMESPACE, name), {"metadata": {"annotations": {FORCE_ROTATE: value}}})


def run(policies: int, rounds: int) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="rotator-bench-") as tmp,
        Stack(Path(tmp), pod_delay=0.05) as stack,
    ):
        assert stack.vault is not None
        print("stack startup:", ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in stack.startup_seconds.items()))
        kube = stack.kube()
        demo.apply_crd(kube)
        demo.create(kube, "/api/v1/namespaces", demo.namespace(BENCH_NAMESPACE))
        demo.create(
            kube,
            f"/api/v1/namespaces/{BENCH_NAMESPACE}/secrets",
            demo.token_secret(BENCH_NAMESPACE, stack.vault.root_token),
        )
        demo.create(
            kube,
            demo.store_collection(BENCH_NAMESPACE),
            demo.vault_store(BENCH_NAMESPACE, stack.vault.address),
        )
        demo.create(
            kube,
            f"/apis/apps/v1/namespaces/{BENCH_NAMESPACE}/deployments",
            demo.consumer_deployment(BENCH_NAMESPACE, replicas=2),
        )
        operator = OperatorProcess(stack.kubeconfig, Path(tmp) / "operator.log", idle_resync=5.0, poll=0.1)
        operator.start()
        try:
            operator.wait_healthy()
            print(
                f"operator startup to healthy: (pid {operator.pid}) RSS {rss_mib(operator.pid or 0):.1f} MiB"
            )
            kube.create(
                policy_path(BENCH_NAMESPACE),
                demo.rotation_policy(
                    BENCH_NAMESPACE,
                    name="single",
                    extra_spec={"revoke": {"gracePeriod": "0s"}, "verify": {"timeout": "60s"}},
                ),
            )
            wait_all(kube, ["single"], 1, 60)
            samples = []
            for round_ in range(rounds):
                force(kube, "single", f"r{round_}")
                samples.append(wait_all(kube, ["single"], round_ + 2, 60))
            print(
                "one forced rotation with a 2-replica Deployment, grace 0s: "
                f"median {statistics.median(samples):.2f} s"
                f" (min {min(samples):.2f}, max {max(samples):.2f}, n={rounds})"
            )

            names = [f"p{i:03d}" for i in range(policies)]
            began = time.monotonic()
            for name in names:
                kube.create(
                    policy_path(BENCH_NAMESPACE),
                    demo.rotation_policy(
                        BENCH_NAMESPACE,
                        name=name,
                        secret=f"{name}-credentials",
                        deployment=None,
                        extra_spec={"revoke": {"gracePeriod": "0s"}},
                    ),
                )
            wait_all(kube, names, 1, 300)
            first = time.monotonic() - began
            print(
                f"{policies} new policies, first rotation of all: {first:.2f} s "
                f"({policies / first:.1f} rotations/s)"
            )
            time.sleep(6)  # let one idle resync pass
            print(f"operator RSS idle with {policies + 1} policies: {rss_mib(operator.pid or 0):.1f} MiB")
            began = time.monotonic()
            for name in names:
                force(kube, name, "all")
            wait_all(kube, names, 2, 300)
            took = time.monotonic() - began
            print(
                f"{policies} policies forced at once: all rotated in {took:.2f} s "
                f"({policies / took:.1f} rotations/s)"
            )
            print(f"operator RSS after: {rss_mib(operator.pid or 0):.1f} MiB")
        finally:
            operator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--policies", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--scale", type=int, metavar="N", help="issue 11's table with N policies (rotator.bench_scale)"
    )
    parser.add_argument(
        "--kube-qps",
        type=float,
        default=1000.0,
        help="the operator's --kube-qps in --scale (high: the machine is measured, not the budget)",
    )
    parser.add_argument("--rest-window", type=float, default=20.0, help="seconds at rest measured in --scale")
    args = parser.parse_args()
    if args.scale:
        from rotator import bench_scale

        bench_scale.run(args.scale, args.kube_qps, args.rest_window)
        return
    run(args.policies, args.rounds)


if __name__ == "__main__":
    main()

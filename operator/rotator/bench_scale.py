"""`make bench ARGS="--scale N"`: issue 11's table, measured on the embedded stack, never asserted.

Rows: Kubernetes API and Vault requests per rotation (the operator's own counters, Lease
renewals excluded), one rotation vs a straight-line script making the bare calls on the same
stack, N policies at rest (operator CPU, requests/s, RSS), N new policies' first rotations,
N forced at once; with the machine's load average, since other work on it skews every time.
The mass rows also say when half the policies were done, the most rotating at once (the width of
the waves, ``rotator.admission``), and the CPU seconds of each process (the operator, the
emulator's thread, this script, OpenBao): on a two-core machine their sum over the wall time says
whether the machine, not the operator's concurrency, is what bounds the run.
The N policies have no restart target (the single policy with a Deployment gives the
per-rotation figures); they share one Vault store.
"""

from __future__ import annotations

import os
import re
import resource
import statistics
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import hvac

from rotator.kube import GROUP, PLURAL, VERSION, Kube, policy_path, secret_path
from rotator.models.keys import FORCE_ROTATE
from rotator.sandbox import demo
from rotator.sandbox.kube_emulator import KubeEmulator
from rotator.sandbox.operator_process import OperatorProcess
from rotator.sandbox.stack import Stack

NS = "bench"
_SENDERS = 8  # threads creating or forcing the N policies
_LATENCY_SAMPLES = 7  # one forced rotation and one straight-line script, alternating
_POLICIES = (GROUP, VERSION, PLURAL)
_SAMPLE = re.compile(r"^(rotator_kube_requests_total|rotator_store_requests_total)\{(.*)\} ([0-9.e+]+)$")


def _counts(operator: OperatorProcess) -> tuple[Counter[str], Counter[str]]:
    with urllib.request.urlopen(operator.metrics_url, timeout=5) as response:
        text = response.read().decode()
    kube: Counter[str] = Counter()
    store: Counter[str] = Counter()
    for line in text.splitlines():
        if (found := _SAMPLE.match(line)) and 'resource="leases"' not in found[2]:
            (kube if found[1].startswith("rotator_kube") else store)[found[2]] += int(float(found[3]))
    return kube, store


def _cpu_seconds(pid: int, thread: int | None = None) -> float:
    """CPU seconds of a process, or of one of its threads."""
    stat = f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat"
    fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass(frozen=True)
class _Cpu:
    """CPU seconds so far of each process of the run (the emulator is a thread of this one)."""

    operator: float
    emulator: float
    bench: float
    openbao: float

    @staticmethod
    def now(operator: int, openbao: int) -> _Cpu:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        ours = usage.ru_utime + usage.ru_stime
        emulator = sum(
            _cpu_seconds(os.getpid(), thread.native_id)
            for thread in threading.enumerate()
            if thread.name == "kube-emulator" and thread.native_id
        )
        # The rest of this process: the script's own creates, forces and polls.
        return _Cpu(_cpu_seconds(operator), emulator, ours - emulator, _cpu_seconds(openbao))

    def since(self, before: _Cpu, wall: float) -> str:
        spent = {name: getattr(self, name) - getattr(before, name) for name in vars(self)}
        parts = ", ".join(f"{name} {seconds:.0f}" for name, seconds in spent.items())
        return f"CPU s {parts} = {sum(spent.values()) / wall * 100:.0f} % of a core over {wall:.0f} s"


@dataclass
class _Progress:
    """How a wait went: when the last and half the policies were done, and the most rotating
    at once (the width of the waves)."""

    took: float = 0.0
    half: float = 0.0
    widest: int = 0

    def row(self) -> str:
        return f"{self.took:.1f} s (half done at {self.half:.1f} s; at most {self.widest} rotating at once)"


def _rotations_done(policy: dict[str, Any]) -> int | None:
    """How many rotations a policy's status shows done; None while one runs."""
    status = policy.get("status") or {}
    return None if status.get("rotation") else len(status.get("history") or [])


class _Arrivals:
    """When each policy's status first showed N rotations done, taken in the emulator as the
    write commits (an in-process listener). Polling would compete with the operator for the
    emulator's thread (a LIST of 1,000 policies is a tenth of a second of it), and the script
    the single rotation is compared with polls nothing meanwhile."""

    def __init__(self, names: set[str]) -> None:
        self.names = names
        self._seen = threading.Condition()
        self._done: dict[str, int] = {}
        self._reached: dict[tuple[str, int], float] = {}  # (name, rotations done): first seen
        self._rotating: set[str] = set()
        self._widest = 0

    def __call__(self, event_type: str, rt: Any, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if name not in self.names:
            return
        done = _rotations_done(obj)
        with self._seen:
            if done is None:
                self._rotating.add(name)
                self._widest = max(self._widest, len(self._rotating))
                return
            self._rotating.discard(name)
            before = self._done.get(name, 0)
            if done > before:
                now = time.monotonic()
                self._reached.update({(name, reached): now for reached in range(before + 1, done + 1)})
                self._done[name] = done
                self._seen.notify_all()

    def _all_reached(self, count: int) -> bool:
        return all(self._done.get(name, 0) >= count for name in self.names)

    def wait(self, count: int, began: float, timeout: float) -> _Progress:
        """Until every policy shows ``count`` rotations done; times count from ``began``, so a
        mass run counts from its first create or force, not from its last."""
        with self._seen:
            if not self._seen.wait_for(lambda: self._all_reached(count), timeout):
                raise TimeoutError(
                    f"{len(self.names)} policies did not reach {count} rotations in {timeout:.0f}s"
                )
            arrived = sorted(self._reached[(name, count)] for name in self.names)
            progress = _Progress(arrived[-1] - began, arrived[(len(arrived) - 1) // 2] - began, self._widest)
            self._widest = len(self._rotating)
            return progress


def _burst(kube_qps: float) -> int:
    return max(10, int(kube_qps * 2))


def _listen(listener: _Arrivals, emulator: KubeEmulator) -> None:
    emulator.store.add_listener(listener, {_POLICIES}, read_only=True)


def _force(kube: Kube, name: str, value: str) -> None:
    kube.merge_patch(policy_path(NS, name), {"metadata": {"annotations": {FORCE_ROTATE: value}}})


def _baseline(kube: Kube, vault: hvac.Client, sample: int = 0) -> float:
    """The bare calls of one rotation, straight-line: write the new value, put it into the
    Secret, restart the Deployment, wait for the rollout, destroy the old value."""
    kv = vault.secrets.kv.v2
    path = f"bench/baseline-{sample}"
    kv.create_or_update_secret(path=path, secret={"value": "old"}, mount_point="secret")
    name = f"baseline-{sample}"
    secret = {"metadata": {"name": name}, "stringData": {"password": "old"}}
    kube.create(secret_path(NS), secret)
    deployment = f"/apis/apps/v1/namespaces/{NS}/deployments/{demo.DEPLOYMENT}"
    began = time.monotonic()
    written = kv.create_or_update_secret(path=path, secret={"value": "new"}, mount_point="secret")
    current = kube.get(secret_path(NS, name)) or {}
    current["data"] = {"password": "bmV3"}
    kube.replace(secret_path(NS, name), current)
    patched = kube.merge_patch(
        deployment,
        {"spec": {"template": {"metadata": {"annotations": {"bench/restartedAt": str(time.time())}}}}},
    )
    generation = patched["metadata"]["generation"]
    while True:
        status = (kube.get(deployment) or {}).get("status") or {}
        replicas = patched["spec"].get("replicas", 1)
        if (
            status.get("observedGeneration", 0) >= generation
            and status.get("updatedReplicas") == replicas
            and status.get("availableReplicas") == replicas
            and status.get("replicas") == replicas
        ):
            break
        time.sleep(0.01)
    kv.destroy_secret_versions(path=path, versions=[written["data"]["version"] - 1], mount_point="secret")
    return time.monotonic() - began


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def run(policies: int, kube_qps: float, rest_window: float) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="rotator-scale-") as tmp,
        Stack(Path(tmp), pod_delay=0.05) as stack,
    ):
        assert stack.vault is not None
        print(f"scale bench, N={policies}; {_load()}")
        kube = stack.kube()
        demo.apply_crd(kube)
        demo.create(kube, "/api/v1/namespaces", demo.namespace(NS))
        demo.create(kube, secret_path(NS), demo.token_secret(NS, stack.vault.root_token))
        demo.create(kube, demo.store_collection(NS), demo.vault_store(NS, stack.vault.address))
        demo.create(
            kube, f"/apis/apps/v1/namespaces/{NS}/deployments", demo.consumer_deployment(NS, replicas=2)
        )
        operator = OperatorProcess(
            stack.kubeconfig,
            Path(tmp) / "operator.log",
            idle_resync=30.0,
            poll=0.1,
            extra_args=("--kube-qps", str(kube_qps), "--kube-burst", str(_burst(kube_qps))),
        )
        operator.start()
        names = {f"p{i:04d}" for i in range(policies)}
        single, mass = _Arrivals({"single"}), _Arrivals(names)
        server = stack.kube_server
        assert server is not None
        for listener in (single, mass):
            server.call(partial(_listen, listener))
        try:
            operator.wait_healthy()
            pid = operator.pid or 0
            body = demo.rotation_policy(
                NS, name="single", extra_spec={"revoke": {"gracePeriod": "0s"}, "verify": {"timeout": "60s"}}
            )
            kube.create(policy_path(NS), body)
            single.wait(1, time.monotonic(), 60)
            _force(kube, "single", "warm")  # the first with an old version: sessions, mount config
            single.wait(2, time.monotonic(), 60)
            time.sleep(1)
            kube_before, store_before = _counts(operator)
            _force(kube, "single", "measured")
            single.wait(3, time.monotonic(), 60)
            time.sleep(1)
            kube_after, store_after = _counts(operator)
            # One sample of each is at the mercy of the machine's load: the median of several,
            # rotation and script alternating, so both meet the same moments.
            vault = hvac.Client(url=stack.vault.address, token=stack.vault.root_token, timeout=5)
            ones, baselines = [], []
            for sample in range(_LATENCY_SAMPLES):
                _force(kube, "single", f"latency-{sample}")  # the trigger: timed from its answer
                ones.append(single.wait(4 + sample, time.monotonic(), 60).took)
                time.sleep(0.5)
                baselines.append(_baseline(kube, vault, sample))
            one, baseline = statistics.median(ones), statistics.median(baselines)
            print("| figure | measured |")
            print("|---|---|")
            print(
                "| Kubernetes API requests per rotation, one Deployment target (Events included; "
                f"watches and Lease excluded) | {(kube_after - kube_before).total()} |"
            )
            print(f"| Vault requests per rotation | {(store_after - store_before).total()} |")
            used = kube_after - kube_before
            tokens = used.total() - sum(n for labels, n in used.items() if 'resource="events"' in labels)
            if kube_qps > 0:  # the client-side budget alone, whatever the machine
                print(
                    f"| {policies} rotations like that one at --kube-qps {kube_qps:.0f}, by the budget "
                    "alone | "
                    f"at least {max(0, tokens * policies - _burst(kube_qps)) / kube_qps:.1f} s "
                    f"({tokens} tokens a rotation: its requests less its Events; a burst of "
                    f"{_burst(kube_qps)}) |"
                )
            print(
                f"| one rotation, grace 0, vs straight-line script (median of {_LATENCY_SAMPLES}, "
                f"alternating) | {one * 1000:.0f} ms vs {baseline * 1000:.0f} ms = {one / baseline:.2f}x "
                f"(rotation {min(ones) * 1000:.0f}-{max(ones) * 1000:.0f} ms, script "
                f"{min(baselines) * 1000:.0f}-{max(baselines) * 1000:.0f} ms) |"
            )

            bao = stack.vault.started_pids[-1]
            cpu_first = _Cpu.now(pid, bao)
            began = time.monotonic()
            bodies = [
                demo.rotation_policy(
                    NS,
                    name=name,
                    secret=f"{name}-credentials",
                    deployment=None,
                    extra_spec={"revoke": {"gracePeriod": "0s"}},
                )
                for name in sorted(names)
            ]
            # Several at once, as kubectl apply of many objects or several users would.
            with ThreadPoolExecutor(_SENDERS) as senders:
                list(senders.map(lambda body: kube.create(policy_path(NS), body), bodies))
            created = time.monotonic() - began
            first = mass.wait(1, began, 1800)
            cpu_first_line = _Cpu.now(pid, bao).since(cpu_first, time.monotonic() - began)
            time.sleep(5)  # settle: the last reconciles' status writes
            kube_before, store_before = _counts(operator)
            cpu_before, rest_began = _cpu_seconds(pid), time.monotonic()
            time.sleep(rest_window)
            elapsed = time.monotonic() - rest_began
            cpu = (_cpu_seconds(pid) - cpu_before) / elapsed * 100
            kube_after, store_after = _counts(operator)
            kube_rate = (kube_after - kube_before).total() / elapsed
            store_rate = (store_after - store_before).total() / elapsed
            print(
                f"| {policies} policies at rest ({elapsed:.0f} s window): operator CPU | "
                f"{cpu:.1f} % of a core; "
                f"{kube_rate:.2f} API + {store_rate:.2f} Vault requests/s "
                f"{dict((kube_after - kube_before + store_after - store_before).most_common(3))} |"
            )
            print(f"| {policies} policies: RSS | {_rss_mib(pid):.0f} MiB idle |")
            print(
                f"| {policies} new policies: all first rotations | {first.row()}; the creates took "
                f"{created:.1f} s; {cpu_first_line} |"
            )
            cpu_forced = _Cpu.now(pid, bao)
            began = time.monotonic()
            with ThreadPoolExecutor(_SENDERS) as senders:
                list(senders.map(lambda name: _force(kube, name, "all"), sorted(names)))
            forced = time.monotonic() - began
            took = mass.wait(2, began, 1800)
            cpu_forced_line = _Cpu.now(pid, bao).since(cpu_forced, time.monotonic() - began)
            print(
                f"| {policies} forced at once | all done in {took.row()}; the forcing patches took "
                f"{forced:.1f} s; RSS after {_rss_mib(pid):.0f} MiB; "
                f"{cpu_forced_line} |"
            )
            print(f"(--kube-qps {kube_qps}; {_load()})")
        finally:
            operator.stop()
        log = (Path(tmp) / "operator.log").read_text(errors="replace").splitlines()
        warnings = Counter(line.split(" ", 4)[-1][:100] for line in log if " WARNING " in line)
        print(f"operator log: {warnings.total()} warnings to shutdown; top {warnings.most_common(3)}")

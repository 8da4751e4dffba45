"""`rotator sandbox`: start the stack, run a rotation scenario, show what happened.

The printed timeline is what an on-call engineer wants to see the first time: which step ran
when and for how long, which Secret version the pods hold before and after, and the metrics.
"""

from __future__ import annotations

import base64
import shlex
import signal
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rotator.kube import Kube, policy_path
from rotator.models.keys import FORCE_ROTATE, SECRET_VERSION
from rotator.sandbox import demo
from rotator.sandbox.operator_process import OperatorProcess, OperatorSupervisor
from rotator.sandbox.processes import free_port
from rotator.sandbox.stack import Stack

SCENARIOS = ("rotation", "failed-rollout")


STEP_MEANING = {
    "generate": "new credential written to Vault as pending",
    "dual": "new promoted to current, old kept valid as previous",
    "sync": "Secret updated (new value + previousKey)",
    "restart": "consumers' pod templates annotated, rollout started",
    "verify": "waited for every rollout to complete",
    "revoke": "grace period, then the old credential destroyed",
    "rollback": "old value restored, consumers restarted, new version failed",
}


def render_timeline(entry: Mapping[str, Any]) -> str:
    """One line per step from the history entry the operator wrote: offset, duration, meaning."""
    lines = []
    offset = 0.0
    for timing in entry.get("steps") or []:
        step, seconds = str(timing["step"]), float(timing["seconds"])
        lines.append(f"  +{offset:6.2f}s  {step:<9} {seconds:6.2f}s  {STEP_MEANING.get(step, '')}")
        offset += seconds
    return "\n".join(lines) or "  (no step timings recorded)"


def get_policy(kube: Kube, name: str = demo.POLICY) -> Mapping[str, Any]:
    return kube.get_policy(demo.NAMESPACE, name) or {}


def wait_for(
    kube: Kube, done: Callable[[Mapping[str, Any]], bool], timeout: float, policy: str = demo.POLICY
) -> Mapping[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        obj = get_policy(kube, policy)
        if done(obj):
            return obj
        time.sleep(0.05)
    raise TimeoutError(f"scenario did not reach its state in {timeout:.0f}s")


def history_len(obj: Mapping[str, Any]) -> int:
    return len((obj.get("status") or {}).get("history") or [])


def idle_with_history(count: int) -> Callable[[Mapping[str, Any]], bool]:
    def check(obj: Mapping[str, Any]) -> bool:
        status = obj.get("status") or {}
        return history_len(obj) >= count and not status.get("rotation")

    return check


def secret_version(kube: Kube) -> str:
    secret = kube.get_secret(demo.NAMESPACE, demo.SECRET) or {}
    return str((secret.get("metadata", {}).get("annotations") or {}).get(SECRET_VERSION, "-"))


def pods_by_version(stack: Stack) -> str:
    assert stack.kube_server is not None
    pods = stack.kube_server.workload_pods("Deployment", demo.NAMESPACE, demo.DEPLOYMENT)
    counts: dict[str, int] = {}
    for pod in pods:
        held = pod.secret_versions.get(demo.SECRET)
        key = f"version {held.version if held and held.version else '-'}{'' if pod.ready else ' (not ready)'}"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{n} pod(s) on {k}" for k, n in sorted(counts.items())) or "no pods"


def scrape(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            text: str = response.read().decode()
    except OSError as exc:
        return f"  (metrics unavailable: {exc})"
    wanted = [
        line
        for line in text.splitlines()
        if line.startswith("rotator_") and "_bucket" not in line and "_created" not in line
    ]
    return "\n".join(f"  {line}" for line in wanted)


def force(kube: Kube, value: str, policy: str = demo.POLICY) -> None:
    kube.merge_patch(
        policy_path(demo.NAMESPACE, policy),
        {"metadata": {"annotations": {FORCE_ROTATE: value}}},
    )


def active_role(kube: Kube) -> str:
    secret = kube.get_secret(demo.NAMESPACE, demo.PG_SECRET) or {}
    encoded = (secret.get("data") or {}).get("username")
    return base64.b64decode(encoded).decode() if encoded else "-"


def pod_logins(stack: Stack) -> tuple[int, int, int]:
    """(pods, logins, refused) of the PostgreSQL demo's consumers right now."""
    assert stack.kube_server is not None
    pods = stack.kube_server.workload_pods("Deployment", demo.NAMESPACE, demo.PG_DEPLOYMENT)
    return len(pods), sum(p.logins for p in pods), sum(p.refused_logins for p in pods)


def run_postgres_demo(stack: Stack, kube: Kube, out: Callable[[str], None]) -> bool:
    """The alternating-users demo: force a rotation of demo-pg and show the role moving, the
    consumers' logins (each pod logs in with the credential it started with) and refusals."""
    wait_for(kube, idle_with_history(1), 90, demo.PG_POLICY)
    before = active_role(kube)
    pods, logins, refused = pod_logins(stack)
    out(f"\nPostgreSQL demo ({demo.PG_POLICY}): active role {before}; {pods} pods, {logins} logins")
    force(kube, str(int(time.time())), demo.PG_POLICY)
    seen_refused = 0
    deadline = time.monotonic() + 120
    obj: Mapping[str, Any] = {}
    while time.monotonic() < deadline:
        seen_refused = max(seen_refused, pod_logins(stack)[2])
        obj = get_policy(kube, demo.PG_POLICY)
        if idle_with_history(2)(obj):
            break
        time.sleep(0.1)
    entry = ((obj.get("status") or {}).get("history") or [{}])[0]
    after = active_role(kube)
    pods, logins, refused = pod_logins(stack)
    out("timeline of the forced rotation (offset, step, duration):\n" + render_timeline(entry))
    out(
        f"result: {entry.get('result')}; role {before} -> {after} ({before} locked: NOLOGIN); "
        f"{pods} pods on {after}, {logins} logins, {max(refused, seen_refused)} refused"
    )
    return entry.get("result") == "Succeeded" and after != before and max(refused, seen_refused) == 0


def run_scenario(stack: Stack, operator: OperatorProcess, scenario: str, out: Callable[[str], None]) -> bool:
    kube = stack.kube()
    out("waiting for the first rotation (the policy is new, the store path empty) ...")
    wait_for(kube, idle_with_history(1), 90)
    before = secret_version(kube)
    out(
        f"initial credential in place: Secret {demo.SECRET} at store version {before}; "
        f"{pods_by_version(stack)}"
    )
    if scenario == "failed-rollout":
        assert stack.kube_server is not None
        stack.kube_server.set_fail_readiness("Deployment", demo.NAMESPACE, demo.DEPLOYMENT, True)
        out("fault injected: new pods of Deployment demo-app never become ready")
    out(f"forcing a rotation: kubectl annotate rp -n {demo.NAMESPACE} {demo.POLICY} {FORCE_ROTATE}=...")
    force(kube, str(int(time.time())))
    obj = wait_for(kube, idle_with_history(2), 120)
    if scenario == "failed-rollout":
        assert stack.kube_server is not None
        stack.kube_server.set_fail_readiness("Deployment", demo.NAMESPACE, demo.DEPLOYMENT, False)
        out("fault cleared: the rolled-back pods can become ready again")
        time.sleep(2.0)
    after = secret_version(kube)
    status = obj.get("status") or {}
    entry = (status.get("history") or [{}])[0]
    result = entry.get("result")
    out("\ntimeline of the forced rotation (offset, step, duration):\n" + render_timeline(entry))
    out(f"\nresult: {result}; phase {status.get('phase')}")
    for condition in status.get("conditions") or []:
        out(
            f"  {condition['type']}={condition['status']} ({condition['reason']}): "
            f"{condition.get('message', '')}"
        )
    out(f"Secret version: before {before}, after {after}")
    out(f"pods: {pods_by_version(stack)}")
    out(f"\nmetrics ({operator.metrics_url}):\n{scrape(operator.metrics_url)}")
    if scenario == "failed-rollout":
        return result == "RolledBack" and after == before
    postgres_ok = run_postgres_demo(stack, kube, out) if stack.postgres is not None else True
    return result == "Succeeded" and after != before and postgres_ok


def write_env(workdir: Path, stack: Stack, operator: OperatorProcess) -> Path:
    """``<dir>/env``: the running sandbox's addresses as shell exports, for a second terminal
    (``. .sandbox/env``): the ports are free ones chosen at start, so nothing else need be known."""
    assert stack.vault is not None
    lines = {
        "KUBECONFIG": str(stack.kubeconfig),
        "VAULT_ADDR": stack.vault.address,
        "VAULT_TOKEN": stack.vault.root_token,  # the throwaway dev server's, printed at start too
        "ROTATOR_METRICS_URL": operator.metrics_url,
    }
    path = workdir / "env"
    path.write_text("".join(f"export {key}={shlex.quote(value)}\n" for key, value in lines.items()))
    return path


def run_sandbox(
    workdir: Path,
    once: bool,
    scenario: str = "rotation",
    out: Callable[[str], None] = print,
    metrics_port: int = 0,
) -> int:
    workdir = workdir.resolve()
    stack = Stack(workdir)
    operator: OperatorProcess | None = None
    supervisor: OperatorSupervisor | None = None
    stop_requested = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True
        raise KeyboardInterrupt

    stop_signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, on_signal) for sig in stop_signals}
    try:
        stack.start()
        assert stack.vault is not None
        assert stack.kube_server is not None
        kube = stack.kube()
        demo.seed(kube, stack.vault.address, stack.vault.root_token)
        if stack.postgres is not None:
            demo.seed_postgres(kube, stack.postgres.dsn, stack.postgres.host, stack.postgres.port)
        # --metrics-port pins the metrics port (the liveness port stays a free one); 0: both free.
        liveness_port = free_port() if metrics_port else 0
        operator = OperatorProcess(
            stack.kubeconfig,
            workdir / "operator.log",
            idle_resync=2.0,
            poll=0.2,
            metrics_port=metrics_port,
            liveness_port=liveness_port,
        )
        operator.start()
        operator.wait_healthy()
        supervisor = OperatorSupervisor(operator, out=out).start()  # a crashed operator comes back
        timings = ", ".join(f"{k} {v:.2f}s" for k, v in stack.startup_seconds.items())
        out(f"local stack up ({timings})")
        out(f"  Kubernetes API   {stack.kube_server.url}   kubeconfig {stack.kubeconfig}")
        out(f"  Vault (OpenBao)  {stack.vault.address}   token {stack.vault.root_token}")
        if stack.moto:
            out(f"  AWS (moto)       {stack.moto.endpoint_url}")
        if stack.postgres:
            out(f"  PostgreSQL       127.0.0.1:{stack.postgres.port}")
        out(f"  operator         pid {operator.pid}, metrics {operator.metrics_url}, log {operator.log_path}")
        out(f"  addresses        {write_env(workdir, stack, operator)} (. it in another terminal)")
        out(f"look at it:  kubectl --kubeconfig {stack.kubeconfig} get rp -A")
        ok = run_scenario(stack, operator, scenario, out)
        out(f"\nscenario {scenario}: {'as expected' if ok else 'NOT as expected'}")
        if once:
            return 0 if ok else 1
        out("\nthe stack keeps running; press Ctrl-C to stop everything")
        while not stop_requested:
            time.sleep(0.5)
        return 0
    except KeyboardInterrupt:
        out("\nstopping ...")
        return 0
    except Exception as exc:
        out(f"sandbox failed: {type(exc).__name__}: {exc}")
        if operator is not None:
            out(f"operator log: {operator.log_path}")
        return 1
    finally:
        # A second Ctrl-C (or a closed terminal) during cleanup must not abandon half the stack.
        for sig in stop_signals:
            signal.signal(sig, signal.SIG_IGN)
        try:
            if supervisor is not None:
                supervisor.stop()
            if operator is not None:
                operator.stop()
        finally:
            stack.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            sys.stdout.flush()

"""The sandbox supervises the operator as a Deployment would: a crash (SIGKILL from outside, an
exit code other than 0) is followed by a restart that is reported; a crash loop is bounded; a
stop we asked for is not a crash."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from rotator.sandbox import operator_process
from rotator.sandbox.operator_process import OperatorProcess, OperatorSupervisor, RestartPolicy, describe_exit
from rotator.sandbox.processes import free_port
from tests.fixtures.kube import KubeHTTP, wait_until

REPO = Path(__file__).resolve().parents[2]
FAST = RestartPolicy(backoff=0.1, poll=0.05)


def test_describe_exit() -> None:
    assert describe_exit(1) == "code 1"
    assert describe_exit(-9) == "code -9 (SIGKILL)"
    assert describe_exit(-15) == "code -15 (SIGTERM)"


@pytest.mark.slow
def test_a_killed_operator_is_restarted_and_the_restart_is_reported(
    kube_http: KubeHTTP, kubeconfig: Path, tmp_path: Path
) -> None:
    crd = yaml.safe_load((REPO / "crds" / "rotationpolicies.rotator.dev.yaml").read_text())
    assert kube_http.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)[0] == 201
    operator = OperatorProcess(kubeconfig, tmp_path / "operator.log")
    lines: list[str] = []
    operator.start()
    supervisor = OperatorSupervisor(operator, out=lines.append, policy=FAST)
    try:
        operator.wait_healthy()
        supervisor.start()
        first = operator.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: supervisor.restarts == 1 and operator.pid != first, what="the restart")
        operator.wait_healthy()
        assert lines == ["operator exited with code -9 (SIGKILL); restarting (restart #1)"]
        # A stop we ask for is not a crash: nothing restarts it.
        operator.stop()
        time.sleep(0.5)
        assert not operator.alive()
        assert supervisor.restarts == 1
        assert len(lines) == 1
    finally:
        supervisor.stop()
        operator.stop()


@pytest.mark.slow
def test_a_crash_loop_is_bounded_and_reported(tmp_path: Path) -> None:
    """An operator that cannot start (no kubeconfig) exits 1 each time: two restarts, then the
    supervisor gives up and names the log instead of restarting forever."""
    operator = OperatorProcess(tmp_path / "missing-kubeconfig", tmp_path / "operator.log")
    lines: list[str] = []
    supervisor = OperatorSupervisor(
        operator, out=lines.append, policy=RestartPolicy(max_restarts=2, window=120, backoff=0.1, poll=0.05)
    )
    operator.start()
    try:
        supervisor.start()
        wait_until(lambda: supervisor.gave_up, timeout=60, what="the supervisor to give up")
        assert lines == [
            "operator exited with code 1; restarting (restart #1)",
            "operator exited with code 1; restarting (restart #2)",
            "operator exited with code 1; not restarting: 2 restarts in the last 120 s "
            f"(see {tmp_path / 'operator.log'})",
        ]
        assert (
            f"kubeconfig {tmp_path / 'missing-kubeconfig'} does not exist"
            in (tmp_path / "operator.log").read_text()
        )
    finally:
        supervisor.stop()
        operator.stop()


def test_the_backoff_doubles_within_the_window(tmp_path: Path) -> None:
    """Three quick crashes: the waits are 0.1, 0.2 and 0.4 s (before each restart)."""
    starts: list[float] = []

    class Crashing(OperatorProcess):
        def start(self, crash_at: str | None = None) -> None:
            starts.append(time.monotonic())
            self.stopping = False
            self.process = subprocess.Popen(["false"])

    operator = Crashing(tmp_path / "kubeconfig", tmp_path / "operator.log")
    lines: list[str] = []
    supervisor = OperatorSupervisor(
        operator, out=lines.append, policy=RestartPolicy(max_restarts=3, window=60, backoff=0.1, poll=0.01)
    )
    operator.start()
    supervisor.start()
    try:
        wait_until(lambda: supervisor.gave_up, timeout=10, what="the supervisor to give up")
    finally:
        supervisor.stop()
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(gaps) == 3
    for gap, wait in zip(gaps, [0.1, 0.2, 0.4], strict=True):
        assert wait <= gap < wait + 0.5, gaps
    assert lines[-1].startswith("operator exited with code 1; not restarting: 3 restarts")


@pytest.mark.slow
@pytest.mark.parametrize("lost", ["metrics", "liveness"])
def test_an_operator_that_lost_its_port_to_another_job_is_started_again_on_fresh_ones(
    lost: str, kube_http: KubeHTTP, kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """free_port can only say a port was free a moment ago: an operator that finds its liveness
    port taken by then exits at start. That exit is told apart from a crash, and the fixtures
    start it again on fresh ports (tests.fixtures.rotation) instead of failing the test."""
    crd = yaml.safe_load((REPO / "crds" / "rotationpolicies.rotator.dev.yaml").read_text())
    assert kube_http.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)[0] == 201
    with socket.socket() as other_job:
        other_job.bind(("127.0.0.1", 0))
        other_job.listen()
        taken = other_job.getsockname()[1]
        # start() draws metrics, then liveness: one of them is taken by the time it binds
        ports = iter([taken, free_port()] if lost == "metrics" else [free_port(), taken])
        monkeypatch.setattr(operator_process, "free_port", lambda: next(ports, None) or free_port())
        operator = OperatorProcess(kubeconfig, tmp_path / "operator.log")
        try:
            operator.start()
            assert operator.process is not None
            assert operator.process.wait(timeout=30) != 0
            assert operator.lost_its_ports()
            operator.start_again()
            operator.wait_healthy()
            assert taken not in (operator.metrics_port, operator.liveness_port)
            assert not operator.lost_its_ports()
        finally:
            operator.stop()


def test_an_operator_that_failed_otherwise_did_not_lose_its_ports(tmp_path: Path) -> None:
    operator = OperatorProcess(tmp_path / "no-such-kubeconfig", tmp_path / "operator.log")
    try:
        operator.start()
        assert operator.process is not None
        assert operator.process.wait(timeout=30) != 0
        assert not operator.lost_its_ports(), "a missing kubeconfig is no port race"
    finally:
        operator.stop()

"""The ``real_kube`` fixture: a real control plane built from Go (DESIGN §5, "Kubernetes, real").

The binaries come from ``e2e/controlplane/build.sh`` (a cache outside the checkout). When they
are missing:

- under ``CI=true``, or with ``ROTATOR_BUILD_CONTROLPLANE=1``, they are built once, right after
  collection (outside any test's timeout), and a failed build FAILS every test here: CI never
  skips the real cluster;
- otherwise the tests are skipped, loudly, with the command that builds them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rotator.sandbox.processes import pid_alive, sandbox_processes
from rotator.sandbox.realkube import (
    BUILD_SCRIPT,
    ControlPlaneUnavailable,
    RealKubeServer,
    controlplane_bin_dir,
    ensure_built,
    missing_binaries,
)
from tests.fixtures.figures import figure

HERE = Path(__file__).resolve().parent

_SKIP_REASON: list[str] = []
"""Why the real-cluster tests were skipped (outside CI), repeated in the session summary; read
from the skip reports, so the process printing the summary knows it under pytest-xdist too."""

_SKIPPED: list[str] = []
"""Node ids of the tests here that were skipped, counted in the banner."""

_BUILD_ERROR: list[str] = []
"""Why the binaries could not be had (set after collection when a build was attempted)."""


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _build_wanted() -> bool:
    return _in_ci() or os.environ.get("ROTATOR_BUILD_CONTROLPLANE") == "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist every test here runs on one worker: one control plane per run, not one
    per worker (it is the heaviest fixture of the suite)."""
    for item in items:
        if Path(str(item.path)).is_relative_to(HERE):
            item.add_marker(pytest.mark.xdist_group("realkube"))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the control plane before any test runs, when it is wanted and missing."""
    if not any(Path(str(item.path)).is_relative_to(HERE) for item in session.items):
        return
    if not _build_wanted():
        return
    try:
        if missing_binaries(controlplane_bin_dir()):
            sys.stderr.write(f"\nbuilding the real control plane with {BUILD_SCRIPT} (minutes, cold)\n")
            ensure_built()
    except ControlPlaneUnavailable as exc:
        _BUILD_ERROR.append(str(exc))


def _bin_dir() -> Path:
    if _BUILD_ERROR:
        pytest.fail(f"the control plane could not be built: {_BUILD_ERROR[0]}")
    try:
        bin_dir = controlplane_bin_dir()
        missing = missing_binaries(bin_dir)
    except ControlPlaneUnavailable as exc:
        if _in_ci():
            pytest.fail(f"the control plane is unavailable under CI: {exc}")
        pytest.skip(f"REAL CONTROL PLANE UNAVAILABLE: {exc}")
    if missing:
        reason = (
            f"control-plane binaries missing in {bin_dir}: {', '.join(missing)}; "
            f"build them with `bash {BUILD_SCRIPT}` (or ROTATOR_BUILD_CONTROLPLANE=1)"
        )
        if _in_ci():
            pytest.fail(reason)
        pytest.skip(f"REAL CONTROL PLANE NOT BUILT: {reason}")
    return bin_dir


@pytest.fixture(scope="session")
def real_kube() -> Iterator[RealKubeServer]:
    """etcd + kube-apiserver + controller-manager + scheduler + kwok (2 fake nodes) on 127.0.0.1."""
    server = RealKubeServer(bin_dir=_bin_dir())
    try:
        server.start()
        if server.startup_seconds is not None:
            figure(f"real control plane startup: {server.startup_seconds:.1f} s")
        yield server
    finally:
        workdirs = [c.workdir for c in server.components] + [server.workdir]
        server.close()
        alive = [pid for pid in server.started_pids if pid_alive(pid)]
        leftovers = list(sandbox_processes(workdirs))
        if alive or leftovers:
            raise RuntimeError(f"the control plane left processes behind: pids {alive}, {leftovers}")


@pytest.fixture(scope="session")
def real_kubeconfig(real_kube: RealKubeServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An admin kubeconfig file for ``real_kube`` (client certificate, system:masters)."""
    return real_kube.write_kubeconfig(tmp_path_factory.mktemp("realkube") / "kubeconfig")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _SKIP_REASON:
        count = f"{len(_SKIPPED)} test{'s' if len(_SKIPPED) != 1 else ''}"
        terminalreporter.write_sep(
            "!", f"REAL CONTROL PLANE TIER DID NOT RUN: {count} in tests/realkube skipped", red=True
        )
        terminalreporter.write_line(_SKIP_REASON[0], red=True)
        terminalreporter.write_line(
            "Only the emulator was tested. Under CI=true this is a failure; build the control plane "
            "with `make controlplane` (needs Go; minutes, cold; cached outside the checkout).",
            red=True,
        )
        terminalreporter.write_sep("!", red=True)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and Path(report.fspath).resolve().is_relative_to(HERE):
        _SKIPPED.append(report.nodeid)
        if isinstance(report.longrepr, tuple) and not _SKIP_REASON:
            _SKIP_REASON.append(str(report.longrepr[2]))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the item: a fixture's teardown can tell a failed test."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
